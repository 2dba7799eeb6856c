import { join } from 'node:path'
import pg from 'pg'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import type { FastifyBaseLogger } from 'fastify'

/** drizzle over node-postgres: over the pool, or over one connection inside a transaction. */
export type PgOrm = NodePgDatabase

export interface PostgresDb {
  kind: 'postgres'
  orm: PgOrm
  pool: pg.Pool
  /**
   * Runs `fn` in one transaction on one connection (READ COMMITTED unless `begin` says
   * otherwise). Commits what `fn` returns; rolls back when it throws.
   */
  transaction<T> (fn: (tx: PgOrm) => Promise<T>, begin?: string): Promise<T>
  /** true when the database answers a trivial query (within the timeouts below) */
  check (): Promise<boolean>
  close (): Promise<void>
}

/**
 * A database that is down or hung must cost a request at most about 2 s, then a 503:
 * - CONNECT_TIMEOUT_MS bounds both a new connection (a stopped server accepts TCP but never
 *   answers) and the wait for a free connection of the pool;
 * - STATEMENT_TIMEOUT_MS is enforced by the server (slow statements, lock waits) and leaves
 *   the connection usable;
 * - QUERY_TIMEOUT_MS is enforced here, for a server that answers nothing at all; such a
 *   connection is thrown away (see `transaction`).
 */
export const CONNECT_TIMEOUT_MS = 1000
export const STATEMENT_TIMEOUT_MS = 1500
export const QUERY_TIMEOUT_MS = 1800

/**
 * Advisory lock keys of this service (any two constants no other application uses).
 * MIGRATIONS: held (session level) by the one instance applying migrations at start.
 * REVOCATION_LOG: taken (transaction level) before every append; see revocation-log.ts.
 */
export const LOCKS = { MIGRATIONS: 0x61757468_0001, REVOCATION_LOG: 0x61757468_0002 } as const

// src/db/postgres/migrations, from src/ (tsx, tap) and from dist/ (the build copies them alongside).
export const MIGRATIONS_FOLDER = join(__dirname, '..', '..', '..', 'src', 'db', 'postgres', 'migrations')

/**
 * Applies the migrations once, however many instances start together: each takes a session
 * advisory lock first, so one migrates while the others wait, then find nothing left to do.
 * (drizzle's migrator alone would race: CREATE SCHEMA/TABLE IF NOT EXISTS and the migrations
 * themselves run concurrently and fail on each other's objects.)
 */
export async function migratePostgres (url: string, log: FastifyBaseLogger): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 10_000,
    application_name: 'auth-service:migrate'
  })
  client.on('error', (err) => { log.warn({ err }, 'migration connection failed') })
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCKS.MIGRATIONS])
    await migrate(drizzle({ client }), { migrationsFolder: MIGRATIONS_FOLDER })
  } finally {
    await client.end() // the session lock goes with the session
  }
}

/** A pool of `poolSize` connections with the timeouts above. Migrate first (migratePostgres). */
export function openPostgres (url: string, poolSize: number, log: FastifyBaseLogger): PostgresDb {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    // A process frozen inside a transaction would hold its row locks for good.
    idle_in_transaction_session_timeout: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'auth-service'
  })
  // An idle connection that dies (server restart, pg_terminate_backend) is dropped by the
  // pool and replaced on demand; without a listener the error would end the process.
  pool.on('error', (err) => { log.warn({ err }, 'idle PostgreSQL connection lost') })
  const orm = drizzle({ client: pool })

  return {
    kind: 'postgres',
    orm,
    pool,
    async transaction (fn, begin = 'BEGIN') {
      const client = await pool.connect()
      let discard: Error | undefined
      try {
        await client.query(begin)
        const result = await fn(drizzle({ client }))
        await client.query('COMMIT')
        return result
      } catch (err) {
        // After an error the server answered (a constraint, a timeout it enforced) the
        // connection is in step: roll back and keep it. After any other (a timeout of ours,
        // a lost connection) a ROLLBACK would wait behind the hung statement: drop the
        // connection instead, which rolls the transaction back on the server.
        if (isServerError(err)) await client.query('ROLLBACK').catch((e: Error) => { discard = e })
        else discard = err instanceof Error ? err : new Error('transaction failed')
        throw err
      } finally {
        client.release(discard)
      }
    },
    async check () {
      try {
        await pool.query('SELECT 1')
        return true
      } catch {
        return false
      }
    },
    async close () { if (!pool.ended) await pool.end() }
  }
}

/** The error PostgreSQL sent (drizzle wraps it in a DrizzleQueryError), if it was one. */
export function serverError (err: unknown): pg.DatabaseError | undefined {
  const cause = err instanceof DrizzleQueryError ? err.cause : err
  return cause instanceof pg.DatabaseError ? cause : undefined
}
const isServerError = (err: unknown) => serverError(err) !== undefined

// SQLSTATE classes 08 (connection), 53 (out of resources: too many connections), 57
// (operator intervention: shutdown, pg_terminate_backend, statement timeout), 58 (system
// error), and the transient 55P03 (lock timeout), 40001 (serialization), 40P01 (deadlock),
// 25P03 (our transaction idled too long).
const UNAVAILABLE_SQLSTATE = /^(08|53|57|58)|^(55P03|40001|40P01|25P03)$/
// node-postgres's own errors when it has no usable connection, or the server never answered.
// (plain words: no character in them means anything to a regular expression)
const UNAVAILABLE_MESSAGE = new RegExp(`^(${[
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client has encountered a connection error',
  'Client was closed',
  'Cannot use a pool after calling end'
].join('|')})`)
const UNAVAILABLE_NET = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'
])

/** One error (not its causes): PostgreSQL cannot be reached or will not do the work now. */
export function isPostgresUnavailable (e: { code?: unknown, message?: unknown }): boolean {
  if (e instanceof pg.DatabaseError) return typeof e.code === 'string' && UNAVAILABLE_SQLSTATE.test(e.code)
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message)) return true
  return typeof e.code === 'string' && UNAVAILABLE_NET.has(e.code)
}

/** 23505: a unique index refused the row (a username taken, by a racing request too). */
export const isUniqueViolation = (err: unknown) => serverError(err)?.code === '23505'
