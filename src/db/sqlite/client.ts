import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import * as schema from './schema'

export interface SqliteDb {
  kind: 'sqlite'
  orm: BetterSQLite3Database<typeof schema>
  client: Database.Database
  /** true when the database answers a trivial query */
  check (): Promise<boolean>
  close (): Promise<void>
}

// src/db/sqlite/migrations, from src/ (tsx, tap) and from dist/ (the build copies them alongside).
export const MIGRATIONS_FOLDER = join(__dirname, '..', '..', '..', 'src', 'db', 'sqlite', 'migrations')

/** Opens (and creates) the file, and applies the migrations. */
export function openSqlite (filename: string): SqliteDb {
  if (filename !== ':memory:') mkdirSync(dirname(filename), { recursive: true })
  const client = new Database(filename)
  client.pragma('journal_mode = WAL') // readers never block the writer
  client.pragma('synchronous = NORMAL') // durable across a process crash; WAL makes it safe
  client.pragma('busy_timeout = 2000')
  client.pragma('foreign_keys = ON')

  const orm = drizzle(client, { schema })
  migrate(orm, { migrationsFolder: MIGRATIONS_FOLDER })

  const ping = client.prepare('SELECT 1')
  return {
    kind: 'sqlite',
    orm,
    client,
    async check () {
      try {
        ping.get()
        return true
      } catch {
        return false
      }
    },
    async close () { client.close() }
  }
}

/** SQLite's error for a duplicate username (better-sqlite3 throws it unwrapped). */
export const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === 'SQLITE_CONSTRAINT_UNIQUE'
