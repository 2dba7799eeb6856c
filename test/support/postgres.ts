import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { chownSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tap, { type Test } from 'tap'
import pg from 'pg'
import type { App } from './app'
import { freePort } from './ports'

// PostgreSQL for the tests: databases on the shared server, or a private server to break.

/**
 * The SQL dialect this test file runs against: SQLite unless TEST_DIALECT=postgres, which
 * the *.postgres.test.ts files set before loading the suite they run again on PostgreSQL.
 */
export const DIALECT: 'sqlite' | 'postgres' = process.env.TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite'

let databases = 0

/** The machine's shared server (trust auth); tests only create and drop databases on it. */
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** The URL of `database` on the server at `server` (a URL of that server). */
export const databaseUrl = (server: string, database: string) => {
  const url = new URL(server)
  url.pathname = `/${database}`
  return url.toString()
}

async function adminQuery (text: string, server = POSTGRES_URL): Promise<void> {
  const client = new pg.Client({ connectionString: server, connectionTimeoutMillis: 3000 })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
}

/**
 * Fails (never skips, CI or not) when the shared PostgreSQL cannot be reached: every machine
 * of this project runs one, and a suite that quietly skipped would prove nothing.
 */
export async function requirePostgres (t: Test, server = POSTGRES_URL): Promise<void> {
  try {
    await adminQuery('SELECT 1', server)
  } catch (err) {
    t.fail(`PostgreSQL at ${new URL(server).host} is unreachable (${(err as Error).message}); start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`)
    throw err
  }
}

/** A new, empty PostgreSQL database on the shared server, dropped when `t` ends. */
export async function createPostgresDatabase (t: Test): Promise<string> {
  await requirePostgres(t)
  const name = `auth_test_${process.pid}_${++databases}_${randomBytes(3).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name}`)
  // FORCE: a server process a test killed may not have closed its connections.
  t.teardown(() => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  return databaseUrl(POSTGRES_URL, name)
}

let perFile: Promise<string> | undefined
/** This test file's PostgreSQL database: made once (creating one costs a second), dropped at the end. */
export const fileDatabase = () => (perFile ??= createPostgresDatabase(tap))

/** DATABASE_URL of a fresh, empty database in the dialect under test, that apps and server processes can share. */
export async function testDatabase (t: Test): Promise<string> {
  if (DIALECT === 'postgres') return await createPostgresDatabase(t)
  return `file:${join(mkdtempSync(join(tmpdir(), 'auth-db-')), 'auth.db')}`
}

/** Runs SQL on the app's database, whatever its dialect (for tests that must bend the data). */
export async function runSql (app: App, query: import('drizzle-orm').SQL): Promise<void> {
  if (app.db.kind === 'postgres') await app.db.orm.execute(query)
  else app.db.orm.run(query)
}

/**
 * A PostgreSQL server of the test's own (initdb + pg_ctl on a free port, in a temporary
 * directory), that the test may stop, restart or freeze. Never the machine's shared server.
 */
export async function ownPostgres (t: Test) {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'auth-pg-'))
  const data = join(dir, 'data')
  // PostgreSQL refuses to run as root: as root, run it as the postgres user.
  const asRoot = process.getuid?.() === 0
  const ids = asRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : {}
  if (asRoot) chownSync(dir, ids.uid!, ids.gid!)
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { ...ids, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
  writeFileSync(join(dir, 'log'), '')
  if (asRoot) chownSync(join(dir, 'log'), ids.uid!, ids.gid!)
  const start = async () => {
    run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '20', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start'])
  }
  let frozen: number[] = []
  /** The postmaster and every process it forked: what SIGSTOP must reach to hang the server. */
  const processes = () => {
    const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
    const children = readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p)).filter((p) => {
      try { return readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1] === String(postmaster) } catch { return false }
    }).map(Number)
    return [postmaster, ...children]
  }
  const resume = async () => {
    for (const pid of frozen) { try { process.kill(pid, 'SIGCONT') } catch {} }
    frozen = []
  }
  const stop = async () => {
    await resume()
    try { run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']) } catch {}
  }
  await start()
  t.teardown(stop)
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    /** SIGSTOP the whole server: connections stay open, nothing answers. */
    freeze: async () => {
      frozen = processes()
      for (const pid of frozen) process.kill(pid, 'SIGSTOP')
    },
    resume
  }
}
