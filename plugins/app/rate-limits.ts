import fp from 'fastify-plugin'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible'
import { RateLimitedError } from '../../src/errors'

/** The limits (docs/api.md, "Abuse and overload"): credential guessing is throttled per client and per account. */
export const LIMITS = {
  /** failed logins from one client IP */
  loginFailuresPerIp: { max: 50, windowMs: 15 * 60_000 },
  /** failed logins against one account, from anywhere */
  loginFailuresPerAccount: { max: 100, windowMs: 60 * 60_000 },
  /** accounts created from one client IP */
  registrationsPerIp: { max: 100, windowMs: 60 * 60_000 },
  /** refresh attempts from one client IP (valid or not: counted before the work) */
  refreshesPerIp: { max: 120, windowMs: 60_000 }
} as const

export interface RateLimits {
  readonly enabled: boolean
  /**
   * Counts one login attempt against the client IP and the account, atomically and before
   * any hashing; throws RateLimitedError when either is over its limit.
   */
  consumeLogin (ip: string | undefined, username: string): Promise<void>
  /** A successful login gives back what consumeLogin counted: only failures are limited. */
  loginSucceeded (ip: string | undefined, username: string): Promise<void>
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
  enabled: false,
  async consumeLogin () {},
  async loginSucceeded () {},
  async consumeRegister () {},
  async consumeRefresh () {}
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
  const loginByIp = limiter('login-ip', LIMITS.loginFailuresPerIp)
  const loginByAccount = limiter('login-acct', LIMITS.loginFailuresPerAccount)
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
  const accountKey = (username: string) => username.toLowerCase()

  const service: RateLimits = {
    enabled: true,
    async consumeLogin (ip, username) {
      // The IP first, and the account only when the IP may go on: a burst from one client
      // can spend at most its own limit of the account's budget, never lock it out alone.
      if (ip !== undefined) await consume(loginByIp, ip)
      await consume(loginByAccount, accountKey(username))
    },
    async loginSucceeded (ip, username) {
      await Promise.all([
        ip === undefined ? null : loginByIp.reward(ip),
        loginByAccount.reward(accountKey(username))
      ])
    },
    async consumeRegister (ip) {
      if (ip !== undefined) await consume(registerByIp, ip)
    },
    async consumeRefresh (ip) {
      if (ip !== undefined) await consume(refreshByIp, ip)
    }
  }
  fastify.decorate('rateLimits', service)
}, { name: 'rate-limits', dependencies: ['config', 'redis'] })
