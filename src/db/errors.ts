import { DrizzleQueryError } from 'drizzle-orm/errors'
import { isPostgresUnavailable } from './postgres/client'

// The database failing underneath us is unavailability, not a bug to show: 503, like the
// revocation store. SQLite: disk, lock, corruption, a closed connection. PostgreSQL: see
// isPostgresUnavailable (down, hung, restarting, out of connections, a timeout).
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|CORRUPT|NOTADB|READONLY)/

/** True when `error` (or its cause, a few levels down) says the database cannot be reached or used. */
export function isDatabaseUnavailable (error: unknown): boolean {
  let e = error as { code?: unknown, message?: unknown, cause?: unknown } | undefined
  for (let depth = 0; e != null && depth < 3; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && SQLITE_UNAVAILABLE.test(e.code)) return true
    if (e.message === 'The database connection is not open') return true // better-sqlite3, after close()
    if (isPostgresUnavailable(e)) return true
  }
  return false
}

/**
 * What to log of an error: drizzle's DrizzleQueryError carries the statement's parameters
 * (password and token hashes) in its message and stack, so log the statement and the
 * driver's error instead.
 */
export function loggable (error: Error): { err: unknown, query?: string } {
  return error instanceof DrizzleQueryError ? { err: error.cause, query: error.query } : { err: error }
}
