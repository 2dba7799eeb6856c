import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible'
import { RateLimitedError } from '../../src/errors'

/**
 * The limits (docs/api.md, "Abuse and overload"): credential guessing is throttled per client,
 * per account and client pair, per session, and per account, without giving anyone a switch
 * that locks the owner out of an address the owner has logged in from.
 */
export const LIMITS = {
  /** failed password checks from one client IP, whatever the account */
  loginFailuresPerIp: { max: 50, windowMs: 15 * 60_000 },
  /** failed password checks against one account from one client IP */
  loginFailuresPerAccountIp: { max: 10, windowMs: 15 * 60_000 },
  /**
   * failed password checks against one account from addresses it has no successful login
   * from: slows guessing spread over many addresses; the owner's known addresses skip it
   */
  loginFailuresPerAccount: { max: 100, windowMs: 15 * 60_000 },
  /** wrong current_password answers within one session (a stolen token guessing the password) */
  passwordFailuresPerSession: { max: 5, windowMs: 60 * 60_000 },
  /** accounts created from one client IP */
  registrationsPerIp: { max: 100, windowMs: 60 * 60_000 },
  /** refresh attempts from one client IP (valid or not: counted before the work) */
  refreshesPerIp: { max: 120, windowMs: 60_000 }
} as const

/**
 * Password hashing in flight at once, in this process, per client address and per account:
 * a quarter of what the queue holds before load shedding refuses (from the measured speed of
 * a hash), between 1 and `perIp`, enforced once the queue is half full, so that one client
 * can never fill the queue alone and get other people's logins shed.
 */
export const HASHING_CONCURRENCY = { perIp: 4, perAccount: 2, shareOfQueue: 1 / 4 } as const

/** How long a successful login makes its address one the account's owner uses. */
export const KNOWN_ADDRESS_TTL_MS = 30 * 24 * 60 * 60_000
const KNOWN_ADDRESSES_IN_MEMORY = 100_000

/** Who a password check is about. */
export interface PasswordAttempt {
  /** the username as typed (any case): unknown accounts are counted too */
  account: string
  ip?: string
  /** the session asking, for current_password: it gets a limit of its own */
  sessionId?: string
}

export interface RateLimits {
  /**
   * Counts one password check before any hashing, atomically, against every limit that
   * applies; throws RateLimitedError (429) when one is spent. Follow it with exactly one of
   * succeeded (right password), cancelled (no answer on the password: shed, client gone,
   * store down) or nothing (wrong password: the count stands).
   */
  checkPassword (attempt: PasswordAttempt): Promise<void>
  /** The password was right: gives back what checkPassword counted and remembers the address as the owner's. */
  succeeded (attempt: PasswordAttempt): Promise<void>
  /** The check never judged the password (503, client gone): gives back what checkPassword counted. */
  cancelled (attempt: PasswordAttempt): Promise<void>
  /**
   * Counts a failure that checkPassword did not count (a wrong second factor after the
   * right password): the next checkPassword sees it. Never throws for a limit.
   */
  countFailure (attempt: PasswordAttempt): Promise<void>
  /**
   * A slot for password hashing on behalf of `ip` (and `account`): throws RateLimitedError
   * when the client already has its share in flight. Call the returned function once done.
   */
  hashingSlot (ip: string | undefined, account?: string): () => void
  /** Counts a registration attempt; throws RateLimitedError over the limit. */
  consumeRegister (ip: string | undefined): Promise<void>
  /** Counts a refresh attempt; throws RateLimitedError over the limit. */
  consumeRefresh (ip: string | undefined): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    rateLimits: RateLimits
  }
}

const DISABLED: RateLimits = {
  async checkPassword () {},
  async succeeded () {},
  async cancelled () {},
  async countFailure () {},
  hashingSlot: () => () => {},
  async consumeRegister () {},
  async consumeRefresh () {}
}

/** Counts of work in flight per key; a key at its cap is refused while `pressed()`. */
function concurrencyCap (cap: () => number, pressed: () => boolean) {
  const inFlight = new Map<string, number>()
  return {
    take (key: string): boolean {
      const n = inFlight.get(key) ?? 0
      if (n >= cap() && pressed()) return false
      inFlight.set(key, n + 1)
      return true
    },
    release (key: string) {
      const n = (inFlight.get(key) ?? 1) - 1
      if (n <= 0) inFlight.delete(key)
      else inFlight.set(key, n)
    }
  }
}

/**
 * Counters on rate-limiter-flexible: each consume is one atomic increment (a Lua script in
 * Redis, shared by every instance with the same REDIS_PREFIX; a Map otherwise), done before
 * any hashing, so N racing requests are counted as N.
 */
export default fp(async function rateLimits (fastify) {
  const { rateLimits: enabled, redisPrefix } = fastify.config
  if (!enabled) {
    fastify.decorate('rateLimits', DISABLED)
    return
  }
  const redis = fastify.hasDecorator('redis') ? fastify.redis : undefined

  const limiter = (name: string, { max, windowMs }: { max: number, windowMs: number }): RateLimiterAbstract => {
    const opts = { keyPrefix: `${redisPrefix}rl:${name}`, points: max, duration: windowMs / 1000 }
    if (redis === undefined) return new RateLimiterMemory(opts)
    return new RateLimiterRedis({
      ...opts,
      storeClient: redis,
      // While Redis is down, count in this process at once (login and register must not
      // depend on Redis): weaker across instances, but never a bypass.
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory(opts)
    })
  }
  const byIp = limiter('login-ip', LIMITS.loginFailuresPerIp)
  const byPair = limiter('login-acct-ip', LIMITS.loginFailuresPerAccountIp)
  const byAccount = limiter('login-acct', LIMITS.loginFailuresPerAccount)
  const bySession = limiter('password-sid', LIMITS.passwordFailuresPerSession)
  const registerByIp = limiter('register-ip', LIMITS.registrationsPerIp)
  const refreshByIp = limiter('refresh-ip', LIMITS.refreshesPerIp)

  const consume = async (rl: RateLimiterAbstract, key: string) => {
    try {
      await rl.consume(key)
    } catch (err) {
      if (err instanceof RateLimiterRes) throw new RateLimitedError(Math.max(1, Math.ceil(err.msBeforeNext / 1000)))
      throw err
    }
  }
  const accountKey = (account: string) => account.toLowerCase()
  const pairKey = (account: string, ip: string) => `${accountKey(account)}\n${ip}`

  // Addresses the owner has logged in from: only a hash of (account, ip) is kept, for
  // KNOWN_ADDRESS_TTL_MS, in Redis when there is one (every instance sees it) and in this
  // process as well (so that an outage of Redis does not forget them here).
  const known = new Map<string, number>()
  const knownKey = (account: string, ip: string) =>
    createHash('sha256').update(`${accountKey(account)}\0${ip}`).digest('base64url')
  const redisKnownKey = (hash: string) => `${redisPrefix}rl:known:${hash}`
  const remember = async (account: string, ip: string) => {
    const hash = knownKey(account, ip)
    known.delete(hash) // re-inserted last: the Map's order is the order to forget them in
    known.set(hash, Date.now() + KNOWN_ADDRESS_TTL_MS)
    if (known.size > KNOWN_ADDRESSES_IN_MEMORY) known.delete(known.keys().next().value!)
    await redis?.set(redisKnownKey(hash), '1', 'PX', KNOWN_ADDRESS_TTL_MS).catch(() => {})
  }
  const isKnown = async (account: string, ip: string): Promise<boolean> => {
    const hash = knownKey(account, ip)
    const until = known.get(hash)
    if (until !== undefined && until > Date.now()) return true
    if (redis === undefined) return false
    // Redis unreachable: not known here, so the account limit applies (counted in memory).
    return await redis.exists(redisKnownKey(hash)).then((n) => n === 1, () => false)
  }

  /** The counters an attempt is counted under; the account-wide one only from unknown addresses. */
  const countersOf = async ({ account, ip, sessionId }: PasswordAttempt) => {
    const counters: Array<[RateLimiterAbstract, string]> = []
    if (ip !== undefined) counters.push([byIp, ip], [byPair, pairKey(account, ip)])
    if (sessionId !== undefined) counters.push([bySession, sessionId])
    if (ip === undefined || !(await isKnown(account, ip))) counters.push([byAccount, accountKey(account)])
    return counters
  }
  // What checkPassword counted, per attempt object, so that succeeded/cancelled give back exactly that.
  const counted = new WeakMap<PasswordAttempt, Array<[RateLimiterAbstract, string]>>()
  const giveBack = async (attempt: PasswordAttempt) => {
    const counters = counted.get(attempt) ?? []
    counted.delete(attempt)
    await Promise.all(counters.map(async ([rl, key]) => await rl.reward(key)))
  }

  const { perIp, perAccount, shareOfQueue } = HASHING_CONCURRENCY
  const { passwords } = fastify
  const share = () => Math.max(1, Math.floor(passwords.capacity() * shareOfQueue))
  // Only once the queue is half full: below that, a client's extra work sheds nobody.
  const pressed = () => passwords.queueDepth() >= passwords.capacity() / 2
  const ipSlots = concurrencyCap(() => Math.min(perIp, share()), pressed)
  const accountSlots = concurrencyCap(() => Math.min(perAccount, share()), pressed)

  const service: RateLimits = {
    async checkPassword (attempt) {
      const counters = await countersOf(attempt)
      const done: Array<[RateLimiterAbstract, string]> = []
      counted.set(attempt, done)
      // In order, each only when the one before lets the attempt go on: a burst from one
      // client spends its own limits, never the account's budget past them.
      // A refused attempt is given back too (by cancelled): the counters hold the failures
      // judged plus the attempts in flight, never attempts that were turned away.
      for (const [rl, key] of counters) {
        done.push([rl, key])
        await consume(rl, key)
      }
    },
    async succeeded (attempt) {
      await giveBack(attempt)
      if (attempt.ip !== undefined) await remember(attempt.account, attempt.ip)
    },
    cancelled: giveBack,
    async countFailure (attempt) {
      const counters = await countersOf(attempt)
      await Promise.all(counters.map(async ([rl, key]) => await rl.penalty(key)))
    },
    hashingSlot (ip, account) {
      const accountKeyed = account === undefined ? undefined : accountKey(account)
      const retry = () => new RateLimitedError(1)
      if (ip !== undefined && !ipSlots.take(ip)) throw retry()
      if (accountKeyed !== undefined && !accountSlots.take(accountKeyed)) {
        if (ip !== undefined) ipSlots.release(ip)
        throw retry()
      }
      let released = false
      return () => {
        if (released) return
        released = true
        if (ip !== undefined) ipSlots.release(ip)
        if (accountKeyed !== undefined) accountSlots.release(accountKeyed)
      }
    },
    async consumeRegister (ip) {
      if (ip !== undefined) await consume(registerByIp, ip)
    },
    async consumeRefresh (ip) {
      if (ip !== undefined) await consume(refreshByIp, ip)
    }
  }
  fastify.decorate('rateLimits', service)
}, { name: 'rate-limits', dependencies: ['config', 'redis', 'passwords'] })
