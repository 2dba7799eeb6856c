import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import fp from 'fastify-plugin'
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import * as schema from '../../src/db/schema'

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database }

declare module 'fastify' {
  interface FastifyInstance {
    /** drizzle over better-sqlite3; only the repository plugins (plugins/app/*-repository.ts) use it */
    db: Db
    /** true when the database answers a trivial query (for /health) */
    checkDatabase (): boolean
  }
}

// src/db/migrations, from src/ (tsx, tap) and from dist/ (the build copies them alongside).
export const MIGRATIONS_FOLDER = join(__dirname, '..', '..', 'src', 'db', 'migrations')

export default fp(async function db (fastify) {
  const { filename } = fastify.config.database
  if (filename !== ':memory:') mkdirSync(dirname(filename), { recursive: true })

  const sqlite = new Database(filename)
  sqlite.pragma('journal_mode = WAL') // readers never block the writer
  sqlite.pragma('synchronous = NORMAL') // durable across a process crash; WAL makes it safe
  sqlite.pragma('busy_timeout = 2000')
  sqlite.pragma('foreign_keys = ON')

  const db = drizzle(sqlite, { schema })
  migrate(db, { migrationsFolder: MIGRATIONS_FOLDER })

  fastify.decorate('db', db)
  const ping = sqlite.prepare('SELECT 1')
  fastify.decorate('checkDatabase', () => {
    try {
      ping.get()
      return true
    } catch {
      return false
    }
  })
  fastify.addHook('onClose', async () => { sqlite.close() })
}, { name: 'db', dependencies: ['config'] })
