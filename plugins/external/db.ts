import fp from 'fastify-plugin'
import { openSqlite, type SqliteDb } from '../../src/db/sqlite/client'
import { migratePostgres, openPostgres, type PostgresDb } from '../../src/db/postgres/client'

/** The database, tagged with its dialect: `config.database.kind` chooses it. */
export type Db = SqliteDb | PostgresDb

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * drizzle over better-sqlite3 or node-postgres; only the repositories plugin
     * (plugins/app/repositories.ts) use it
     */
    db: Db
    /** true when the database answers a trivial query (for /health) */
    checkDatabase (): Promise<boolean>
  }
}

// Migrations are applied before the service takes requests: SQLite's in the file, PostgreSQL's
// by one instance at a time, once the server is reachable (see migratePostgres).
export default fp(async function db (fastify) {
  const { database } = fastify.config
  let db: Db
  if (database.kind === 'postgres') {
    await migratePostgres(database.url, fastify.log, database.startWaitMs)
    db = openPostgres(database.url, database.poolSize, fastify.log)
  } else {
    db = openSqlite(database.filename)
  }
  fastify.decorate<Db>('db', db)
  fastify.decorate('checkDatabase', () => db.check())
  fastify.addHook('onClose', async () => { await db.close() })
}, { name: 'db', dependencies: ['config'] })
