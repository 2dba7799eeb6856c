import { join } from 'node:path'
import pg from 'pg'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import type { FastifyBaseLogger } from 'fastify'
import { StartError } from '../../errors'

/** drizzle over node-postgres: over the pool, or over one connection inside a transaction. */
export type PgOrm = NodePgDatabase

export interface PostgresDb {
  kind: 'postgres'
  orm: PgOrm
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
 * At start, a PostgreSQL that is not reachable yet (not started, restarting, its DNS name not
 * there yet: the usual order of a compose file or a pod) is waited for, up to `waitMs`, with
 * a warning per attempt; then the start fails. A server that answers with an error of its
 * own (a wrong password, no such database) fails the start at once: waiting cannot fix it.
 */
const RETRY_FIRST_MS = 250
const RETRY_MAX_MS = 2000
/** While waiting, one warning at first and then one per this long, not one per attempt. */
const WARN_EVERY_MS = 10_000

/** host:port of a postgres:// URL, for messages (never the URL: it may hold a password). */
function serverOf (url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname || u.searchParams.get('host') || 'localhost'}:${u.port || '5432'}`
  } catch {
    return 'the server'
  }
}

/** One line naming DATABASE_URL for an error the server answered with (it refused us). */
function refusedMessage (err: pg.DatabaseError, server: string): string {
  if (err.code === '3D000') {
    return `DATABASE_URL: ${err.message} on ${server}. ` +
      'Create it (createdb) or name an existing database in DATABASE_URL.'
  }
  return `DATABASE_URL: PostgreSQL on ${server} refused the connection: ${err.message} (${err.code}). ` +
    'Check the user, password and database in DATABASE_URL.'
}

/** True for a failure to reach the server, as opposed to the server refusing us. */
function isUnreachable (err: unknown): boolean {
  if (!(err instanceof pg.DatabaseError)) return true // refused, reset, timed out, DNS
  // 57P03: starting up, shutting down or in recovery; 53300: too many connections
  return err.code === '57P03' || err.code === '53300'
}

async function connectWhenReachable (
  url: string, waitMs: number, log: FastifyBaseLogger, applicationName: string
): Promise<pg.Client> {
  const deadline = Date.now() + waitMs
  const server = serverOf(url)
  let warnAfter = 0
  for (let attempt = 1, retryMs = RETRY_FIRST_MS; ; attempt++, retryMs = Math.min(2 * retryMs, RETRY_MAX_MS)) {
    const client = new pg.Client({
      connectionString: url, connectionTimeoutMillis: 10_000, application_name: applicationName
    })
    client.on('error', (err) => { log.warn({ err }, 'PostgreSQL connection failed') })
    try {
      await client.connect()
      if (attempt > 1) log.info({ attempt }, 'PostgreSQL is reachable')
      return client
    } catch (err) {
      await client.end().catch(() => {})
      if (!isUnreachable(err)) {
        if (err instanceof pg.DatabaseError) throw new StartError(refusedMessage(err, server), { cause: err })
        throw err
      }
      // the reason, never the URL: it may hold a password
      const reason = (err as { code?: string }).code ?? (err as Error).message
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new StartError('DATABASE_URL: PostgreSQL was not reachable within DATABASE_START_WAIT_MS ' +
          `(${waitMs} ms, ${attempt} attempts): ${reason} from ${server}. ` +
          'Start it, or fix the host and port in DATABASE_URL.', { cause: err })
      }
      const wait = Math.min(retryMs, left)
      if (Date.now() >= warnAfter) {
        warnAfter = Date.now() + WARN_EVERY_MS
        log.warn({ attempt, retryInMs: wait, reason, server },
          `PostgreSQL is not reachable yet; waiting up to ${Math.ceil(left / 1000)} s more (DATABASE_START_WAIT_MS)`)
      }
      await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }
}

/**
 * Applies the migrations once, however many instances start together: each takes a session
 * advisory lock first, so one migrates while the others wait, then find nothing left to do.
 * (drizzle's migrator alone would race: CREATE SCHEMA/TABLE IF NOT EXISTS and the migrations
 * themselves run concurrently and fail on each other's objects.) Waits for the server first
 * (connectWhenReachable).
 */
export async function migratePostgres (url: string, log: FastifyBaseLogger, startWaitMs = 0): Promise<void> {
  const client = await connectWhenReachable(url, startWaitMs, log, 'auth-service:migrate')
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
