import { randomBytes, randomUUID } from 'node:crypto'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { once } from 'node:events'
import tap, { type Test } from 'tap'
import { Redis } from 'ioredis'
import pg from 'pg'
import { buildApp } from '../src/app'
import { loadConfig } from '../src/config'
import type { TokenPair } from '../src/schemas/tokens'

export type App = Awaited<ReturnType<typeof buildApp>>

/** A test key: 32+ bytes, made per process, never a fixed string. */
export const TEST_SECRET = randomBytes(32).toString('base64url')

/** The environment every test app starts from: in-memory SQLite, cheap bcrypt, silent logs. */
export function testEnv (overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: ':memory:',
    BCRYPT_COST: '10',
    JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: 'silent',
    ...overrides
  }
}

/**
 * The SQL dialect this test file runs against: SQLite unless TEST_DIALECT=postgres, which
 * the *.postgres.test.ts files set before loading the suite they run again on PostgreSQL.
 */
export const DIALECT: 'sqlite' | 'postgres' = process.env.TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite'

/**
 * The real application, built with the production options, closed when the test ends.
 * SQLite: a database of its own in memory. PostgreSQL: this test file's database (made on
 * first use, dropped when the file ends) unless DATABASE_URL is given.
 */
export async function build (t: Test, overrides: Record<string, string | undefined> = {}, options: Parameters<typeof buildApp>[1] = {}): Promise<App> {
  if (DIALECT === 'postgres' && !('DATABASE_URL' in overrides)) overrides = { ...overrides, DATABASE_URL: await fileDatabase() }
  const app = await buildApp(loadConfig(testEnv(overrides)), options)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

let counter = 0
/** A username no other test file will pick. */
export function uniqueName (prefix = 'user'): string {
  counter++
  return `${prefix}_${process.pid}_${counter}_${randomBytes(3).toString('hex')}`
}

export const PASSWORD = 'correct horse battery staple'

export async function register (app: App, username = uniqueName(), password = PASSWORD) {
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { username, password } })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  return { ...(res.json() as { id: string, username: string, created_at: string }), password }
}

export async function login (app: App, username: string, password = PASSWORD): Promise<TokenPair> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** A registered, logged-in user. */
export async function newUser (app: App, password = PASSWORD) {
  const user = await register(app, uniqueName(), password)
  const tokens = await login(app, user.username, password)
  return { ...user, tokens, auth: bearer(tokens.access_token) }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

// --- Redis ---------------------------------------------------------------------------

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix of its own, so that parallel test files never see each other's keys. */
export const redisPrefix = () => `test:${randomUUID()}:`

/**
 * Fails (never skips) when the shared Redis cannot be reached: every machine of this
 * project runs one, and a suite that quietly skipped would prove nothing.
 */
export async function requireRedis (t: Test, url = REDIS_URL): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null })
  try {
    await client.connect()
    await client.ping()
  } catch (err) {
    t.fail(`Redis at ${url} is unreachable (${(err as Error).message}); start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`)
    throw err
  } finally {
    client.disconnect()
  }
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** A redis-server of the test's own, on a free port, that the test may stop, restart or flush. */
export async function ownRedis (t: Test) {
  const port = await freePort()
  let child: ChildProcess | null = null
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout!.on('data', (d) => { out += d })
    const deadline = Date.now() + 5000
    while (!out.includes('Ready to accept connections')) {
      if (Date.now() > deadline) throw new Error('redis-server did not start')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const stop = async () => {
    if (child === null) return
    const c = child
    child = null
    c.kill('SIGKILL')
    if (c.exitCode === null) await once(c, 'exit')
  }
  await start()
  t.teardown(stop)
  return { url: `redis://127.0.0.1:${port}`, port, start, stop }
}

// --- PostgreSQL ----------------------------------------------------------------------

/** The machine's shared server (trust auth); tests only create and drop databases on it. */
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

const databaseUrl = (server: string, database: string) => {
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
  const name = `auth_test_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name}`)
  // FORCE: a server process a test killed may not have closed its connections.
  t.teardown(() => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  return databaseUrl(POSTGRES_URL, name)
}

let perFile: Promise<string> | undefined
/** This test file's PostgreSQL database: made once (creating one costs a second), dropped at the end. */
const fileDatabase = () => (perFile ??= createPostgresDatabase(tap))

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

// --- A real server process ---------------------------------------------------------------

export const SERVER_ENTRY = join(__dirname, '..', 'dist', 'src', 'server.js')

export interface RunningServer {
  url: string
  port: number
  child: ChildProcess
  /** what the process wrote, for assertions on logs */
  output: () => string
  /** SIGTERM, then the exit code */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * Starts the built service (`npm run build` first; `npm test` does) as its own process on a
 * free port, with a fresh SQLite file unless DATABASE_URL is given, and waits for /health.
 */
export async function startServer (t: Test, env: Record<string, string | undefined> = {}, cwd?: string): Promise<RunningServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'auth-service-'))
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    env: {
      PATH: process.env.PATH,
      ...testEnv({ DATABASE_URL: `file:${join(dir, 'auth.db')}`, LOG_LEVEL: 'info' }),
      PORT: String(port),
      HOST: '127.0.0.1',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const url = `http://127.0.0.1:${port}`
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    child.kill(signal)
    const [code] = await once(child, 'exit')
    return code as number | null
  }
  t.teardown(() => stop('SIGKILL'))
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${out}`)
    try {
      const res = await fetch(`${url}/health`)
      if (res.status === 200 || res.status === 503) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`server did not start: ${out}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { url, port, child, output: () => out, stop }
}

/** Polls `check` until it holds (every 20 ms, up to `ms`); throws if it never does. */
export async function waitFor (check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
