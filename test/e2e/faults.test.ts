import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { ownRedis, startServer, waitFor } from '../helper'
import { startPair } from '../support/cluster'
import type { RedisProxy } from '../support/redis-proxy'
import { burst, call, claims, logout, me, register, session, sleep } from '../support/http'

// Revocation under faults, between real service processes (npm run build first). docs/api.md,
// Tokens and sessions, "Immediacy, on every instance, under faults": once a revoking request is answered
// with success, no instance accepts the token again; one that could not be recorded
// everywhere answers 503, and repeating it on any instance finishes the job.

/** What the instance behind a proxy asks Redis about this token: commands that carry its session's key. */
const asksAbout = (proxy: RedisProxy, token: string) => proxy.watch('sid:' + claims(token).sid)

/**
 * Waits until the instance behind `proxy` answers protected reads from its replica: a
 * request that asks Redis nothing about its token.
 */
async function trusted (proxy: RedisProxy, base: string, token: string, ms = 5000) {
  await waitFor(async () => {
    const asked = asksAbout(proxy, token)
    const status = await me(base, token)
    return status === 200 && asked() === 0
  }, ms)
}

/** Waits until the instance answers /health 200: its Redis link works (again). */
const healthy = (base: string) => waitFor(async () => (await call(base, 'GET', '/health')).status === 200, 10_000)

/**
 * POST /auth/logout on an instance whose link to Redis is cut as it sends the session's
 * revocation, and stays down for `downMs`: within the request the revocation can neither be
 * written to Redis nor announced to the other instances.
 */
async function lostLogout (proxy: RedisProxy, base: string, token: string, downMs = 1000) {
  // The revocation's write, not a read that carries the sid (A answers from Redis while its replica catches up).
  proxy.cutOn('sid:' + claims(token).sid, { downMs, unless: 'MGET' })
  return await logout(base, token)
}

/** 50 requests on `base` after it first refused the token: all refused. */
async function keepsRefusing (t: Test, base: string, token: string) {
  for (let i = 0; i < 50; i++) {
    const status = await me(base, token)
    if (status !== 401) return t.fail(`request ${i} after the first refusal: ${status}`)
  }
  t.pass('refused 50 times more')
}

t.test('F3: a revocation whose notification was lost is still seen on every instance', async (t) => {
  const redis = await ownRedis(t)
  const { a, b, proxy, prefix, databaseUrl } = await startPair(t, { redisUrl: redis.url, proxied: 'a' })
  const user = await register(a.url)

  t.test('(a) the other instance reconciles by itself, and then keeps refusing', async (t) => {
    const { access } = await session(a.url, user.username)
    t.equal(await me(b.url, access), 200, 'the token works on B')
    // A must answer from its replica, or its own read would carry the sid and be the one cut.
    await healthy(a.url)
    await trusted(proxy!, a.url, access)
    t.equal(await lostLogout(proxy!, a.url, access), 503, 'the database has it, the other instances could not be told')
    await waitFor(async () => (await me(b.url, access)) === 401, 5000)
    await keepsRefusing(t, b.url, access)
    t.not(await me(a.url, access), 200, 'nor does A accept it')
  })

  t.test('(b) repeating the logout on the other instance finishes the job', async (t) => {
    const { access } = await session(a.url, user.username)
    t.equal(await me(b.url, access), 200, 'the token works on B')
    await healthy(a.url)
    await trusted(proxy!, a.url, access)
    // A's link stays down while the logout is retried and checked: only the retry can tell B.
    t.equal(await lostLogout(proxy!, a.url, access, 5000), 503)
    const retried = await logout(b.url, access)
    t.ok(retried === 204 || retried === 401, `the retry on B succeeds (got ${retried})`)
    const seen = new Set<number>()
    for (let i = 0; i < 300; i++) {
      const [onA, onB] = await Promise.all([me(a.url, access), me(b.url, access)])
      seen.add(onA).add(onB)
      if (onA === 200 || onB === 200) {
        t.fail(`request ${i}: A ${onA}, B ${onB}: a revoked token was accepted`)
        break
      }
    }
    t.same([...seen].filter((s) => s !== 401 && s !== 503), [], 'only 401 (or 503)')
  })

  // Last: it replaces A. ioredis would resend the lost command once the link is back; here A
  // dies first, so only the database knows, and the restarted instance must tell the others.
  t.test('(c) ... even when the instance that recorded it dies before the link is back', async (t) => {
    const { access } = await session(a.url, user.username)
    t.equal(await me(b.url, access), 200, 'the token works on B')
    await healthy(a.url)
    await trusted(proxy!, a.url, access)
    t.equal(await lostLogout(proxy!, a.url, access, 5000), 503)
    await a.stop('SIGKILL')
    const restarted = await startServer(t, { RATE_LIMITS: 'off', DATABASE_URL: databaseUrl, REDIS_PREFIX: prefix, REDIS_URL: redis.url })
    t.equal(await me(restarted.url, access), 401, 'the restarted instance refuses it')
    await waitFor(async () => (await me(b.url, access)) === 401, 5000)
    await keepsRefusing(t, b.url, access)
  })
})

t.test('F4: a stalled link to Redis never lets a revoked token through, and heals by itself', async (t) => {
  const redis = await ownRedis(t)
  const { a, b, proxy } = await startPair(t, { redisUrl: redis.url, proxied: 'b' })
  const user = await register(a.url)
  const revoked = await session(a.url, user.username)
  const live = await session(a.url, user.username)
  t.equal(await me(b.url, revoked.access), 200, 'the token works on B')
  await trusted(proxy!, b.url, live.access)

  proxy!.stall()
  t.equal(await logout(a.url, revoked.access), 204, 'the logout on A is answered')
  // Requests to B while its link is stalled, spread over a few seconds (long enough for any
  // heartbeat to notice), each on a fresh connection and not waiting for the others.
  const statuses = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
    await sleep(i * 30)
    return await me(b.url, revoked.access)
  }))
  const accepted = statuses.filter((s) => s === 200).length
  t.equal(accepted, 0, `B never accepts the revoked token while stalled (${accepted} of 100 did)`)
  t.same([...new Set(statuses)].filter((s) => s !== 401 && s !== 503), [], 'B answers 401 or 503')

  proxy!.resume()
  await waitFor(async () => (await me(b.url, live.access)) === 200, 5000)
  await trusted(proxy!, b.url, live.access)
  const reads: number[] = []
  for (let i = 0; i < 10; i++) reads.push(...await burst(10, () => b.url, (target) => me(target, live.access)))
  t.same([...new Set(reads)], [200], '100 reads of a live token on B')
  // Waited for, not counted over all 100: on a loaded machine a late heartbeat lets the lease
  // lapse for a moment, and reads then go to Redis, as they should (the old count failed so).
  await waitFor(async () => {
    const asked = asksAbout(proxy!, live.access)
    const statuses = await burst(10, () => b.url, (target) => me(target, live.access))
    return statuses.every((s) => s === 200) && asked() === 0
  }, 10_000)
  t.pass('B answers a whole burst from its replica: it asks Redis nothing about the token')
  t.equal(await me(b.url, revoked.access), 401, 'the revoked token stays refused on B')
  t.equal(await me(a.url, revoked.access), 401, 'and on A')
})

t.test('F10: lowering ACCESS_TOKEN_TTL and restarting does not forget a revocation', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'auth-ttl-')), 'auth.db')
  const first = await startServer(t, { DATABASE_URL: `file:${file}`, ACCESS_TOKEN_TTL: '600' })
  const user = await register(first.url)
  const revoked = await session(first.url, user.username)
  const live = await session(first.url, user.username)
  t.equal(await logout(first.url, revoked.access), 204)
  t.equal(await first.stop(), 0)

  // As if 120 s had passed since the logout: the token (600 s) is still signature-valid,
  // but its revocation is older than the new, shorter lifetime.
  const db = new Database(file)
  const moved = db.prepare('UPDATE sessions SET revoked_at = revoked_at - 120000 WHERE id = ? AND revoked_at IS NOT NULL').run(claims(revoked.access).sid)
  db.close()
  t.equal(moved.changes, 1, 'the revoked session was found')

  const second = await startServer(t, { DATABASE_URL: `file:${file}`, ACCESS_TOKEN_TTL: '60' })
  t.equal(await me(second.url, live.access), 200, 'a live token of the old lifetime still works')
  t.equal(await me(second.url, revoked.access), 401, 'the revoked one does not')
})
