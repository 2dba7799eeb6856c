/**
 * node-postgres (`pg`) or postgres.js (`postgres`) under drizzle? Runs the statements of
 * register, login and refresh (the shapes of src/db/postgres/*-repository.ts: the same
 * row locks and transactions) through each driver, on a fresh database of the local server,
 * with 16 concurrent callers on a pool of 10, and prints throughput and latency.
 *
 *   npx tsx bench/pg-drivers.ts            # pg only (the installed driver)
 *   NODE_PATH=<dir with postgres installed> npx tsx bench/pg-drivers.ts   # both
 *
 * The service ships with pg; postgres.js is not a dependency, so it is loaded only if found.
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { and, eq, sql } from 'drizzle-orm'
import type { PgDatabase } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import { refreshTokens, sessions, users } from '../src/db/postgres/schema'
import { MIGRATIONS_FOLDER } from '../src/db/postgres/client'

const SERVER = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const CALLERS = 16
const POOL = 10
const ROUNDS = Number(process.env.ROUNDS ?? 300) // per caller and operation

type Db = PgDatabase<any, any, any>
interface Driver { name: string, db: Db, tx: <T>(fn: (tx: Db) => Promise<T>) => Promise<T>, close: () => Promise<void> }

async function admin (text: string) {
  const c = new pg.Client({ connectionString: SERVER })
  await c.connect()
  try { await c.query(text) } finally { await c.end() }
}
const urlOf = (name: string) => { const u = new URL(SERVER); u.pathname = `/${name}`; return u.toString() }

async function register (d: Driver, name: string) {
  const now = Date.now()
  const id = randomUUID()
  await d.db.insert(users).values({ id, username: name, usernameKey: name, passwordHash: 'x'.repeat(60), createdAt: now, updatedAt: now })
  return id
}

async function login (d: Driver, name: string) {
  const [user] = await d.db.select({ id: users.id, v: users.credentialVersion }).from(users).where(eq(users.usernameKey, name))
  const now = Date.now()
  const sid = randomUUID()
  const refresh = randomUUID()
  await d.tx(async (tx) => {
    const [locked] = await tx.select({ id: users.id }).from(users).where(and(eq(users.id, user.id), eq(users.credentialVersion, user.v))).for('share')
    if (locked === undefined) return
    await tx.insert(sessions).values({ id: sid, userId: user.id, createdAt: now, lastUsedAt: now, expiresAt: now + 3600_000, accessExpiresAt: now + 900_000 })
    await tx.insert(refreshTokens).values({ tokenHash: refresh, sessionId: sid, createdAt: now, expiresAt: now + 3600_000 })
  })
  return refresh
}

async function refresh (d: Driver, token: string) {
  const now = Date.now()
  const next = randomUUID()
  await d.tx(async (tx) => {
    const [row] = await tx.select({ usedAt: refreshTokens.usedAt, sid: sessions.id, exp: sessions.expiresAt })
      .from(refreshTokens).innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .where(eq(refreshTokens.tokenHash, token)).for('update', { of: refreshTokens })
    if (row === undefined || row.usedAt !== null) throw new Error('bench: token not usable')
    await tx.update(refreshTokens).set({ usedAt: now }).where(eq(refreshTokens.tokenHash, token))
    await tx.insert(refreshTokens).values({ tokenHash: next, sessionId: row.sid, createdAt: now, expiresAt: row.exp })
    await tx.update(sessions).set({ lastUsedAt: now, accessExpiresAt: sql`greatest(${sessions.accessExpiresAt}, ${now + 900_000})` }).where(eq(sessions.id, row.sid))
  })
  return next
}

function stats (name: string, op: string, latencies: number[], wall: number) {
  latencies.sort((a, b) => a - b)
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2)
  return { driver: name, op, 'ops/s': Math.round(latencies.length / (wall / 1000)), 'p50 ms': q(0.5), 'p99 ms': q(0.99) }
}

async function run (d: Driver) {
  const rows = []
  const names = Array.from({ length: CALLERS }, () => Array.from({ length: ROUNDS }, () => `b_${randomUUID()}`))
  const tokens: string[][] = names.map(() => [])
  for (const [op, body] of [
    ['register', async (c: number, i: number) => { await register(d, names[c][i]) }],
    ['login', async (c: number, i: number) => { tokens[c][i] = await login(d, names[c][i]) }],
    ['refresh', async (c: number, i: number) => { tokens[c][i] = await refresh(d, tokens[c][i]) }]
  ] as const) {
    const latencies: number[] = []
    const start = performance.now()
    await Promise.all(names.map(async (_, c) => {
      for (let i = 0; i < ROUNDS; i++) {
        const t0 = performance.now()
        await body(c, i)
        latencies.push(performance.now() - t0)
      }
    }))
    rows.push(stats(d.name, op, latencies, performance.now() - start))
  }
  return rows
}

async function nodePostgres (url: string): Promise<Driver> {
  const pool = new pg.Pool({ connectionString: url, max: POOL })
  // The service's transaction helper, in short (src/db/postgres/client.ts).
  const tx = async <T>(fn: (tx: Db) => Promise<T>) => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      const result = await fn(drizzlePg({ client }))
      await client.query('COMMIT')
      return result
    } catch (err) {
      await client.query('ROLLBACK')
      throw err
    } finally { client.release() }
  }
  return { name: 'node-postgres', db: drizzlePg({ client: pool }), tx, close: () => pool.end() }
}

async function postgresJs (url: string): Promise<Driver | undefined> {
  let postgres: any
  try { postgres = require('postgres') } catch { return undefined }
  const { drizzle } = require('drizzle-orm/postgres-js')
  const client = postgres(url, { max: POOL, onnotice: () => {} })
  const db = drizzle({ client })
  return {
    name: 'postgres.js',
    db,
    tx: (fn) => db.transaction(fn),
    close: () => client.end()
  }
}

async function main () {
  const results = []
  for (const make of [nodePostgres, postgresJs]) {
    for (let repeat = 0; repeat < 2; repeat++) {
      const name = `bench_${process.pid}_${randomUUID().slice(0, 8)}`
      await admin(`CREATE DATABASE ${name}`)
      try {
        const setup = new pg.Client({ connectionString: urlOf(name) })
        await setup.connect()
        await migrate(drizzlePg({ client: setup }), { migrationsFolder: MIGRATIONS_FOLDER })
        await setup.end()
        const driver = await make(urlOf(name))
        if (driver === undefined) break
        try { results.push(...(await run(driver))) } finally { await driver.close() }
      } finally {
        await admin(`DROP DATABASE ${name} WITH (FORCE)`)
      }
    }
  }
  console.table(results)
}

main().catch((err) => { console.error(err); process.exit(1) })
