import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { RateLimitedError } from '../../src/errors'

/** Fixed-window counters. `count` adds one hit; `get` only reads. */
export interface Counters {
  count (key: string, windowMs: number): Promise<{ hits: number, resetInMs: number }>
  get (key: string, windowMs: number): Promise<{ hits: number, resetInMs: number }>
}

export function createMemoryCounters (sweepEveryMs = 60_000): Counters & { close (): void } {
  const windows = new Map<string, { hits: number, resetAt: number }>()
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const [key, w] of windows) if (w.resetAt <= now) windows.delete(key)
  }, sweepEveryMs).unref()
  const current = (key: string, windowMs: number, now: number) => {
    let w = windows.get(key)
    if (w === undefined || w.resetAt <= now) {
      w = { hits: 0, resetAt: now + windowMs }
      windows.set(key, w)
    }
    return w
  }
  return {
    async count (key, windowMs) {
      const now = Date.now()
      const w = current(key, windowMs, now)
      w.hits++
      return { hits: w.hits, resetInMs: w.resetAt - now }
    },
    async get (key, windowMs) {
      const now = Date.now()
      const w = windows.get(key)
      if (w === undefined || w.resetAt <= now) return { hits: 0, resetInMs: windowMs }
      return { hits: w.hits, resetInMs: w.resetAt - now }
    },
    close () { clearInterval(sweeper) }
  }
}

/**
 * Counters shared by every instance through Redis (one round trip: INCR + PEXPIRE NX).
 * Login and register must not depend on Redis, so while it is unreachable each process
 * counts on its own instead: weaker, but never a bypass of the limit in that process.
 */
export function createRedisCounters (redis: Redis, prefix: string, fallback: Counters, log: FastifyBaseLogger): Counters {
  const warn = (err: unknown) => log.warn({ msg: (err as Error).message }, 'rate limits: Redis unreachable, counting in this process')
  return {
    async count (key, windowMs) {
      try {
        const results = await redis.multi().incr(prefix + key).pexpire(prefix + key, windowMs, 'NX').pttl(prefix + key).exec()
        const hits = Number(results?.[0]?.[1])
        const ttl = Number(results?.[2]?.[1])
        return { hits, resetInMs: ttl > 0 ? ttl : windowMs }
      } catch (err) {
        warn(err)
        return await fallback.count(key, windowMs)
      }
    },
    async get (key, windowMs) {
      try {
        const [hits, ttl] = await Promise.all([redis.get(prefix + key), redis.pttl(prefix + key)])
        return { hits: Number(hits ?? 0), resetInMs: ttl > 0 ? ttl : windowMs }
      } catch (err) {
        warn(err)
        return await fallback.get(key, windowMs)
      }
    }
  }
}

/** The limits (docs/api.md, "Abuse and overload"): credential guessing is throttled per client and per account. */
export const LIMITS = {
  /** failed logins from one client IP */
  loginFailuresPerIp: { max: 50, windowMs: 15 * 60_000 },
  /** failed logins against one account, from anywhere */
  loginFailuresPerAccount: { max: 100, windowMs: 60 * 60_000 },
  /** accounts created from one client IP */
  registrationsPerIp: { max: 100, windowMs: 60 * 60_000 }
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

export default fp(async function rateLimits (fastify) {
  const { rateLimits: enabled, redisPrefix } = fastify.config
  const memory = createMemoryCounters()
  fastify.addHook('onClose', async () => { memory.close() })
  const counters: Counters = fastify.hasDecorator('redis')
    ? createRedisCounters(fastify.redis, `${redisPrefix}rl:`, memory, fastify.log)
    : memory

  const accountKey = (username: string) => `acct:${username.toLowerCase()}`
  const ipKey = (bucket: string, ip: string) => `${bucket}:${ip}`
  const over = (state: { hits: number, resetInMs: number }, max: number) =>
    state.hits >= max ? Math.max(1, Math.ceil(state.resetInMs / 1000)) : 0

  const service: RateLimits = enabled
    ? {
        enabled,
        async consumeLogin (ip, username) {
          const [byIp, byAccount] = await Promise.all([
            ip === undefined ? { hits: 0, resetInMs: 0 } : counters.get(ipKey('login-ip', ip), LIMITS.loginFailuresPerIp.windowMs),
            counters.get(accountKey(username), LIMITS.loginFailuresPerAccount.windowMs)
          ])
          const wait = Math.max(over(byIp, LIMITS.loginFailuresPerIp.max), over(byAccount, LIMITS.loginFailuresPerAccount.max))
          if (wait > 0) throw new RateLimitedError(wait)
          await Promise.all([
            ip === undefined ? null : counters.count(ipKey('login-ip', ip), LIMITS.loginFailuresPerIp.windowMs),
            counters.count(accountKey(username), LIMITS.loginFailuresPerAccount.windowMs)
          ])
        },
        async loginSucceeded () {},
        async consumeRegister (ip) {
          if (ip === undefined) return
          const state = await counters.count(ipKey('register-ip', ip), LIMITS.registrationsPerIp.windowMs)
          const wait = state.hits > LIMITS.registrationsPerIp.max ? Math.max(1, Math.ceil(state.resetInMs / 1000)) : 0
          if (wait > 0) throw new RateLimitedError(wait)
        },
        async consumeRefresh () {}
      }
    : { enabled, async consumeLogin () {}, async loginSucceeded () {}, async consumeRegister () {}, async consumeRefresh () {} }

  fastify.decorate('rateLimits', service)
}, { name: 'rate-limits', dependencies: ['config', 'redis'] })
