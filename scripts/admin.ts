/**
 * `npm run admin -- grant USERNAME` / `npm run admin -- revoke USERNAME`: gives or takes the
 * admin role (docs/api.md, "Administration"). The first admin can only be made here: no route
 * grants a role. Reads DATABASE_URL (and .env) as the service does, applies the migrations,
 * and changes one row; the service sees it at the next admin request (roles are never cached).
 */
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { ConfigError, parseDatabaseUrl } from '../src/config'
import { openSqlite } from '../src/db/sqlite/client'
import { migratePostgres, openPostgres } from '../src/db/postgres/client'
import { sqliteAccountsRepository } from '../src/db/sqlite/accounts-repository'
import { postgresAccountsRepository } from '../src/db/postgres/accounts-repository'
import { ADMIN_ROLE } from '../plugins/app/admin'

const USAGE = `usage: npm run admin -- grant USERNAME
       npm run admin -- revoke USERNAME`

async function main (argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true })
  const [command, username, ...rest] = positionals
  if ((command !== 'grant' && command !== 'revoke') || username === undefined || rest.length > 0) {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }
  if (existsSync('.env')) process.loadEnvFile('.env')
  let database
  try {
    database = parseDatabaseUrl(process.env.DATABASE_URL ?? 'file:./data/auth.db', 1, 0)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      return 2
    }
    throw err
  }
  const log = pino({ level: 'warn' })
  let db
  if (database.kind === 'postgres') {
    await migratePostgres(database.url, log)
    db = openPostgres(database.url, 1, log)
  } else {
    db = openSqlite(database.filename)
  }
  try {
    const repo = db.kind === 'postgres' ? postgresAccountsRepository(db) : sqliteAccountsRepository(db)
    const found = await repo.setRole(username, ADMIN_ROLE, command === 'grant')
    if (!found) {
      process.stderr.write(`no user named ${JSON.stringify(username)}\n`)
      return 1
    }
    process.stdout.write(command === 'grant' ? `${username} is an admin\n` : `${username} is no longer an admin\n`)
    return 0
  } finally {
    await db.close()
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error) => {
  process.stderr.write(`${err.message}\n`)
  process.exitCode = 1
})
