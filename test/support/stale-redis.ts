import type { Test } from 'tap'
import { Agent, request } from 'node:http'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import Database from 'better-sqlite3'
import { Redis } from 'ioredis'
import { redisPrefix } from './redis'
import { startServer, type RunningServer } from './server'
import { waitFor } from './ports'
import { call, claims, logout, me, register, session } from './http'

// For the fault tests where Redis comes back with OLDER data (test/e2e/faults-*-redis.test.ts,
// faults-lagging-replica.test.ts): a Redis restarted from an older snapshot, or a lagging
// replica promoted, still holds the marker of an earlier complete rebuild but lacks later
// revocations. No instance may believe it before it is rebuilt: while it recovers, every
// revoked token is refused (401) or the request answers 503, never 200.

/** Live revocations besides the test's own, so that a rebuild takes a while (issue 15 found acceptances from 2,000 on). */
export const LIVE_ENTRIES = 5_000
/** Sessions revoked after the snapshot (or after the replica stopped following). */
export const REVOKED_LATER = 30
export const INSTANCES = 2

export const client = (url: string) => {
  const redis = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  return redis
}

/**
 * One SQLite database, migrated and filled with LIVE_ENTRIES revocations (rows written
 * directly, in one transaction), then INSTANCES service processes on it sharing one Redis
 * (which their start-up rebuild fills from the database).
 */
export async function cluster (t: Test, redisUrl: string) {
  const databaseUrl = `file:${join(mkdtempSync(join(tmpdir(), 'auth-stale-')), 'auth.db')}`
  const prefix = redisPrefix()
  const env = { RATE_LIMITS: 'off', DATABASE_URL: databaseUrl, REDIS_PREFIX: prefix, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' }
  const first = await startServer(t, env)
  t.equal(await first.stop(), 0, 'the schema is in place')
  const db = new Database(databaseUrl.slice('file:'.length))
  const insert = db.prepare('INSERT INTO revocation_log (kind, target_id, until, created_at) VALUES (?, ?, ?, ?)')
  const now = Date.now()
  db.transaction(() => {
    for (let i = 0; i < LIVE_ENTRIES; i++) insert.run('jti', randomUUID(), now + 3_600_000, now)
  })()
  db.close()
  const servers: RunningServer[] = []
  for (let i = 0; i < INSTANCES; i++) servers.push(await startServer(t, env))
  return { servers, prefix }
}

/** Logs in `n` sessions of one user, each checked to work on every instance. */
export async function sessions (t: Test, servers: RunningServer[], n: number) {
  const user = await register(servers[0].url)
  const tokens: string[] = []
  for (let i = 0; i < n; i++) tokens.push((await session(servers[i % servers.length].url, user.username)).access)
  for (const s of servers) t.equal(await me(s.url, tokens[0]), 200, 'a session works on every instance')
  return tokens
}

/** Logs every token out (spread over the instances); each logout answers 204. */
export async function revokeAll (t: Test, servers: RunningServer[], tokens: string[]) {
  const statuses = await Promise.all(tokens.map((token, i) => logout(servers[i % servers.length].url, token)))
  t.same([...new Set(statuses)], [204], `${tokens.length} logouts answered 204`)
  for (const s of servers) {
    for (const token of tokens) {
      if (await me(s.url, token) !== 401) return t.fail('a revoked token is accepted before any fault')
    }
  }
}

/** GET /users/me over a kept-alive connection of `agent`: its status, or -1 when the request failed. */
const read = (agent: Agent, base: string, token: string) => new Promise<number>((resolve) => {
  const req = request(`${base}/users/me`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
    res.resume()
    res.on('end', () => resolve(res.statusCode!))
    res.on('error', () => resolve(-1))
  })
  req.on('error', () => resolve(-1))
  req.end()
})

/**
 * Protected reads with the revoked tokens on every instance, 32 at a time per instance over
 * connections kept alive (as fast as the machine allows), until stopped; counts the answers.
 */
export function hammer (servers: RunningServer[], tokens: string[]) {
  const state = { running: true }
  const statuses = new Map<number, number>()
  const perServer = servers.map(() => 0)
  const agents = servers.map(() => new Agent({ keepAlive: true, maxSockets: 32 }))
  const worker = async (s: number, w: number) => {
    for (let i = w; state.running; i++) {
      const status = await read(agents[s], servers[s].url, tokens[i % tokens.length])
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      perServer[s]++
    }
  }
  const workers = servers.flatMap((_, s) => Array.from({ length: 32 }, (_, w) => worker(s, w)))
  return {
    statuses,
    /** requests answered so far, per instance */
    answered: () => [...perServer],
    async stop () {
      state.running = false
      await Promise.all(workers)
      for (const agent of agents) agent.destroy()
    }
  }
}

/**
 * Recovery is over once the Redis the instances now use holds every revoked session again
 * and every instance is healthy; the hammer then goes on for 50 more requests per instance.
 */
export async function recovered (redisUrl: string, prefix: string, servers: RunningServer[], tokens: string[], load: ReturnType<typeof hammer>) {
  const redis = client(redisUrl)
  try {
    const keys = tokens.map((token) => `${prefix}sid:${claims(token).sid}`)
    await waitFor(async () => (await redis.exists(...keys).catch(() => 0)) === keys.length, 60_000)
  } finally {
    redis.disconnect()
  }
  await waitFor(async () => {
    const health = await Promise.all(servers.map(async (s) => (await call(s.url, 'GET', '/health')).status))
    return health.every((status) => status === 200)
  }, 30_000)
  const after = load.answered()
  await waitFor(async () => load.answered().every((n, i) => n >= after[i] + 50), 60_000)
}

export function verdict (t: Test, statuses: Map<number, number>) {
  const accepted = statuses.get(200) ?? 0
  const summary = JSON.stringify(Object.fromEntries(statuses))
  t.equal(accepted, 0, `no instance accepted a token revoked after Redis last had it (${accepted} acceptances; answers ${summary})`)
  t.same([...statuses.keys()].filter((s) => s !== 401 && s !== 503 && s !== -1), [], 'only 401 or 503 (or a connection cut)')
  t.ok((statuses.get(401) ?? 0) > 0, 'and the instances did answer (401)')
}
