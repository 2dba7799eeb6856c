/**
 * `npm run bench` (after `npm run build`): the service as a real production process, driven
 * by autocannon from this process, against two references measured in the same run.
 * See bench/README.md for what is measured, how, and what it gave.
 *
 *   npm run bench               the full run (under 5 minutes)
 *   npm run bench -- --quick    about a minute: shorter windows, fewer scenarios on Redis
 *   npm run bench -- --profile  also writes the service's CPU profiles to bench/.tmp/profiles
 *   npm run bench -- --alg EdDSA|ES256|RS256   only `me` and `reject` (memory store), tokens
 *                               signed with that algorithm; results in bench/.tmp/results-<alg>.json (with
 *                               --save also in bench/results.json, beside the full run)
 *   npm run bench -- --db postgres   the same scenarios on PostgreSQL (a fresh database of the
 *                               server at BENCH_POSTGRES_URL, dropped at the end); --db both runs
 *                               SQLite then PostgreSQL in one run, so their ratios share a machine
 *                               state; --db sqlite (the default) is the run as it always was
 *   npm run bench -- --save     a full run that replaces the committed bench/results.json and
 *                               the tables of README.md and bench/README.md (bench/tables.ts);
 *                               with --alg, only that algorithm's entry of the committed file
 *
 * Without --save a run writes bench/.tmp/results.json (ignored by git), so trying the bench
 * never dirties the tree.
 *
 * Env: BENCH_REDIS_URL (default REDIS_URL, else redis://127.0.0.1:6379), BCRYPT_COST (12),
 * BENCH_POSTGRES_URL (with --db postgres|both; default postgres://postgres@127.0.0.1:5432/postgres,
 * where the run creates and drops its own database),
 * UV_THREADPOOL_SIZE (passed to the service and to the bcrypt reference alike).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import pg from 'pg'
import { childPids, cpuSeconds, freePort, rssMb, sleep, startChild, stopAll, type Child } from './lib/procs'
import { http } from './lib/http'
import { load, rotate, type LoadResult, type LoadSpec, type Req } from './lib/load'
import { badTokens } from './lib/tokens'
import { generateSigningJwk, parseKeySet, type AsymmetricAlg, type SigningKey } from '../src/signing-keys'
import { dbOf, summary, type DbKind, type MemoryEntry, type Results, type Row } from './lib/report'
import { verifierBench } from './verifier'
import { COMMITTED_RESULTS, LATEST_RESULTS, readResults, updateReadmes } from './tables'
import { feedBench, feedSummary } from './feed'
import { accountsBench, accountsSummary } from './accounts'

const ROOT = join(__dirname, '..')
const SERVER_ENTRY = join(ROOT, 'dist', 'src', 'server.js')
// The service's runtime flags, exactly as `npm start` passes them ("node <flags> dist/src/server.js").
const START_FLAGS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string)
  .split(/\s+/).filter((arg) => arg.startsWith('--'))
const QUICK = process.argv.includes('--quick')
const PROFILE = process.argv.includes('--profile')
const ALG = (() => {
  const at = process.argv.indexOf('--alg')
  if (at < 0) return undefined
  const alg = process.argv[at + 1]
  if (alg !== 'EdDSA' && alg !== 'ES256' && alg !== 'RS256') throw new Error('--alg takes EdDSA, ES256 or RS256')
  return alg as AsymmetricAlg
})()
/** with --alg: the service's key set (one key), written next to the database */
let signingKey: SigningKey | undefined
let keysFile: string | undefined
const DBS: DbKind[] = (() => {
  const at = process.argv.indexOf('--db')
  if (at < 0) return ['sqlite']
  const db = process.argv[at + 1]
  if (db === 'sqlite' || db === 'postgres') return [db]
  if (db === 'both') return ['sqlite', 'postgres']
  throw new Error('--db takes sqlite, postgres or both')
})()
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const SAVE = process.argv.includes('--save')
const BCRYPT_COST = Number(process.env.BCRYPT_COST ?? 12)
const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const RUN_ID = randomBytes(3).toString('hex')
const JWT_SECRET = randomBytes(48).toString('base64url')
// production refuses to start without it while TOTP enrolment is on (one key per run: the services share a database)
const MFA_ENCRYPTION_KEY = randomBytes(32).toString('base64')
const ISSUER = 'auth-service'
const AUDIENCE = 'auth-service'

/** Durations in seconds; a window opens after its warm-up. */
const P = QUICK
  ? { seedUsers: 12, refreshesPerUser: 9, connections: 16, warmup: 0.4, duration: 1, bcryptConnections: 8, bcryptWarmup: 1, bcryptDuration: 2, refWarmup: 1, refDuration: 2, readsDuration: 1.5, stormWarmup: 1.2, badTokens: 200 }
  : { seedUsers: 64, refreshesPerUser: 7, connections: 32, warmup: 1, duration: 4, bcryptConnections: 8, bcryptWarmup: 2, bcryptDuration: 6, refWarmup: 1.5, refDuration: 5, readsDuration: 4, stormWarmup: 2, badTokens: 400 }

const log = (msg: string) => { process.stderr.write(`[bench ${((performance.now() - T0) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`) }
const T0 = performance.now()

// --- helpers --------------------------------------------------------------------------

async function pool<T, R> (items: T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }))
  return out
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

// --- processes ------------------------------------------------------------------------

interface Server {
  child: Child
  url: string
  db: DbKind
  store: 'memory' | 'redis'
  workers: number
  redisPrefix: string | null
  /** the primary and, with WORKERS > 1, its workers */
  pids (): number[]
}

const PASS_ENV = (extra: Record<string, string | undefined>) => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  ...(process.env.UV_THREADPOOL_SIZE ? { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE } : {}),
  ...extra
})

async function startServer (database: Database, opts: { redis: boolean, workers: number, label: string }): Promise<Server> {
  const port = await freePort()
  const redisPrefix = opts.redis ? `bench:${RUN_ID}:${database.kind}-${opts.label}:` : null
  const args = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(__dirname, '.tmp', 'profiles')}`, `--cpu-prof-name=${RUN_ID}-${opts.label}-\${pid}.cpuprofile`, ...START_FLAGS, SERVER_ENTRY] : [...START_FLAGS, SERVER_ENTRY]
  const child = startChild(`server(${opts.label})`, process.execPath, args, PASS_ENV({
    // runtime flags for the service only (never the references), to try V8 settings
    ...(process.env.SERVICE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.SERVICE_NODE_OPTIONS } : {}),
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    ...(ALG === undefined ? { JWT_SECRET } : { JWT_ALG: ALG, JWT_KEYS_FILE: keysFile }),
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    MFA_ENCRYPTION_KEY,
    BCRYPT_COST: String(BCRYPT_COST),
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn',
    WORKERS: String(opts.workers),
    ...(opts.redis ? { REDIS_URL, REDIS_PREFIX: redisPrefix! } : {})
  }))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exited()) throw new Error(`${child.name} exited at start:\n${child.output()}`)
    try {
      const res = await http(url, 'GET', '/health')
      if (res.status === 200) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`${child.name} did not answer /health in 30 s:\n${child.output()}`)
    await sleep(50)
  }
  const pids = () => [child.pid, ...(opts.workers > 1 ? childPids(child.pid) : [])]
  if (opts.workers > 1) {
    // A worker that is not listening yet gets no connection, and autocannon's connections
    // are kept alive: wait until every worker exists and has gone quiet after starting.
    for (;;) {
      const workers = childPids(child.pid)
      if (workers.length >= opts.workers) {
        const before = workers.map((p) => cpuSeconds(p) ?? 0)
        await sleep(400)
        const after = workers.map((p) => cpuSeconds(p) ?? 0)
        if (after.every((a, i) => a - before[i] <= 0.02)) break
      } else {
        await sleep(100)
      }
      if (Date.now() > deadline) throw new Error(`${child.name}: workers did not settle:\n${child.output()}`)
    }
  }
  return { child, url, db: database.kind, store: opts.redis ? 'redis' : 'memory', workers: opts.workers, redisPrefix, pids }
}

// --- databases ------------------------------------------------------------------------

interface Database { kind: DbKind, url: string, drop (): Promise<void> }

/** What must run however the bench ends (SIGINT included): dropping a PostgreSQL database. */
const cleanups = new Set<() => Promise<void>>()
async function runCleanups () {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn)
    await fn().catch((err: Error) => log(`cleanup failed: ${err.message}`))
  }
}

async function adminQuery (text: string) {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
  client.on('error', () => {})
  await client.connect()
  try {
    return await client.query(text)
  } finally {
    await client.end()
  }
}

/**
 * SQLite: a file in the run's temporary directory. PostgreSQL: a new database named after
 * the run on the server at BENCH_POSTGRES_URL, dropped when the pass ends, fails or is
 * interrupted (WITH (FORCE): a killed service may have left connections behind).
 */
async function openDatabase (kind: DbKind, dir: string): Promise<Database> {
  if (kind === 'sqlite') return { kind, url: `file:${join(dir, 'auth.db')}`, drop: async () => {} }
  const name = `bench_${RUN_ID}`
  await adminQuery(`CREATE DATABASE ${name}`)
  const drop = async () => {
    cleanups.delete(drop)
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    log(`dropped PostgreSQL database ${name}`)
  }
  cleanups.add(drop)
  const url = new URL(POSTGRES_URL)
  url.pathname = `/${name}`
  log(`created PostgreSQL database ${name} at ${url.host}`)
  return { kind, url: url.toString(), drop }
}

async function startCeiling (body: string): Promise<{ child: Child, url: string }> {
  const child = startChild('ceiling', process.execPath, ['--import', 'tsx', join(__dirname, 'ceiling.ts')], PASS_ENV({ NODE_ENV: 'production', CEILING_BODY: body }))
  const deadline = Date.now() + 20_000
  for (;;) {
    const m = /\{"port":(\d+)\}/.exec(child.output())
    if (m) return { child, url: `http://127.0.0.1:${m[1]}` }
    if (child.exited() || Date.now() > deadline) throw new Error(`ceiling did not start:\n${child.output()}`)
    await sleep(50)
  }
}

interface BcryptResult { rps: number, rps_counted: number, p50_ms: number, p99_ms: number, ops: number, threads: number, inflight: number, cpu_ms_per_op: number | null }

/**
 * The same comparison in CPU time: the reference's CPU ms per request over the scenario's.
 * Other processes on a shared machine steal wall time (req/s) far more than CPU time per
 * request, so this one stays readable when the machine is busy.
 */
function cpuRatio (scenario: number | null, refs: Array<number | null>) {
  const known = refs.filter((x): x is number => x !== null && x > 0)
  if (scenario === null || scenario <= 0 || known.length === 0) return { cpu_ms_per_req: scenario, cpu_ratio: null }
  return { cpu_ms_per_req: Number(scenario.toFixed(4)), cpu_ratio: Number((mean(known) / scenario).toFixed(3)) }
}

async function bcryptReference (): Promise<BcryptResult> {
  const child = startChild('bcrypt', process.execPath, ['--import', 'tsx', join(__dirname, 'bcrypt-ref.ts'),
    '--cost', String(BCRYPT_COST), '--warmup', String(P.refWarmup), '--duration', String(P.refDuration)], PASS_ENV({}))
  await new Promise<void>((resolve) => {
    if (child.exited()) resolve()
    else child.proc.once('exit', () => resolve())
  })
  const line = child.output().trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(line) as BcryptResult
  } catch {
    throw new Error(`bcrypt reference failed:\n${child.output()}`)
  }
}

// --- state: users, tokens, refresh chains ----------------------------------------------

interface User { username: string, password: string, id: string }
interface Chain { token: string, dead: boolean, pending: boolean }

const users: User[] = []
const accessTokens: string[] = []
const seedRefreshTokens: string[] = []
/** refresh chains of the sessions the `login` scenario opened (kept apart from the `me` tokens) */
const chains: Chain[] = []
let registered = 0

/** A new pass (another database) starts with no users, tokens or chains. */
function resetState () {
  users.length = 0
  accessTokens.length = 0
  seedRefreshTokens.length = 0
  chains.length = 0
}

const newUsername = () => `b${RUN_ID}_${registered++}`
const newPassword = () => `bench-password-${randomBytes(6).toString('hex')}`

/** A hashing request, repeated after Retry-After while the service sheds load (503). */
async function hashing (server: Server, path: string, body: unknown) {
  for (;;) {
    const res = await http(server.url, 'POST', path, body)
    if (res.status !== 503) return res
    await sleep(1000 * Number(res.retryAfter ?? 1))
  }
}

async function seed (server: Server) {
  const t = performance.now()
  const fresh = Array.from({ length: P.seedUsers }, () => ({ username: newUsername(), password: newPassword() }))
  // 8 in flight keeps the service's 4 bcrypt threads busy
  await pool(fresh, 8, async (u) => {
    const res = await hashing(server, '/auth/register', u)
    if (res.status !== 201) throw new Error(`seed register: ${res.status} ${res.text}`)
    users.push({ ...u, id: res.json().id })
  })
  const sessions = await pool(users, 8, async (u) => {
    const res = await hashing(server, '/auth/login', { username: u.username, password: u.password })
    if (res.status !== 200) throw new Error(`seed login: ${res.status} ${res.text}`)
    return res.json() as { access_token: string, refresh_token: string }
  })
  // More access tokens without more bcrypt: each refresh gives a new one in the same session.
  await pool(sessions, 8, async (s) => {
    accessTokens.push(s.access_token)
    let refresh = s.refresh_token
    for (let i = 0; i < P.refreshesPerUser; i++) {
      const res = await http(server.url, 'POST', '/auth/refresh', { refresh_token: refresh })
      if (res.status !== 200) throw new Error(`seed refresh: ${res.status} ${res.text}`)
      const pair = res.json() as { access_token: string, refresh_token: string }
      accessTokens.push(pair.access_token)
      refresh = pair.refresh_token
    }
    seedRefreshTokens.push(refresh)
  })
  // Interleave users, so that consecutive requests name different users.
  accessTokens.sort(() => Math.random() - 0.5)
  log(`seeded ${users.length} users, ${accessTokens.length} access tokens in ${((performance.now() - t) / 1000).toFixed(1)} s`)
}

// --- scenarios --------------------------------------------------------------------------

const getReqs = (path: string, tokens: string[]) => (c: number, conns: number): Req[] =>
  rotate(tokens, c, conns).map((t) => ({ method: 'GET', path, headers: bearer(t) }))

function specOf (kind: string, url: string, conns = P.connections): LoadSpec {
  const base = { url, connections: conns, warmup: P.warmup, duration: P.duration }
  switch (kind) {
    case 'me':
    case 'ceiling':
      return { ...base, requests: (c) => getReqs('/users/me', accessTokens)(c, conns) }
    case 'protected':
      return { ...base, requests: (c) => getReqs('/protected', accessTokens)(c, conns) }
    case 'introspect':
      return {
        ...base,
        requests: (c) => rotate(accessTokens, c, conns).map((t) => ({
          method: 'POST', path: '/auth/introspect', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t })
        }))
      }
    case 'reject': {
      const bad = badTokens({ secret: JWT_SECRET, signingKey: signingKey && ALG && { alg: ALG, kid: signingKey.kid, privateKeyPem: signingKey.privateKeyPem }, issuer: ISSUER, audience: AUDIENCE, accessTokens, userIds: users.map((u) => u.id), refreshTokens: seedRefreshTokens, count: P.badTokens })
      return { ...base, expect: (s) => s === 401, requests: (c) => getReqs('/users/me', bad)(c, conns) }
    }
    case 'refresh': {
      const usable = chains.filter((ch) => !ch.dead)
      const n = Math.min(conns, usable.length)
      if (n === 0) throw new Error('no refresh chains: the login scenario opened no session')
      return {
        ...base,
        connections: n,
        requests: (c) => {
          // Each connection owns its chains: one request in flight per chain, ever.
          const mine = usable.filter((_, i) => i % n === c)
          let k = 0
          let current = mine[0]
          return [{
            method: 'POST',
            path: '/auth/refresh',
            headers: { 'content-type': 'application/json' },
            setupRequest (req) {
              for (let tries = 0; tries < mine.length; tries++) {
                current = mine[k++ % mine.length]
                if (!current.dead) break
              }
              current.pending = true
              return { ...req, body: JSON.stringify({ refresh_token: current.token }) }
            },
            onResponse (status, body) {
              current.pending = false
              if (status === 200) current.token = (JSON.parse(body) as { refresh_token: string }).refresh_token
              else current.dead = true
            }
          }]
        }
      }
    }
    case 'login':
      return {
        url,
        connections: P.bcryptConnections,
        warmup: P.bcryptWarmup,
        duration: P.bcryptDuration,
        littlesLaw: true,
        requests: (c) => rotate(users, c, P.bcryptConnections).map((u) => ({
          method: 'POST',
          path: '/auth/login',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: u.username, password: u.password }),
          onResponse (status, body) {
            if (status === 200) chains.push({ token: (JSON.parse(body) as { refresh_token: string }).refresh_token, dead: false, pending: false })
          }
        }))
      }
    case 'register':
      return {
        url,
        connections: P.bcryptConnections,
        warmup: P.bcryptWarmup,
        duration: P.bcryptDuration,
        littlesLaw: true,
        requests: () => [{
          method: 'POST',
          path: '/auth/register',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ username: newUsername(), password: newPassword() }) })
        }]
      }
  }
  throw new Error(`unknown scenario ${kind}`)
}

const rows: Row[] = []
const unavailable: Array<{ name: string, db: DbKind, store: string, reason: string }> = []
const failures: string[] = []
const memoryReport: Array<Record<string, unknown>> = []
const ceilingRuns: Array<{ db: DbKind, store: 'memory' | 'redis', runs: LoadResult[] }> = []

/** `where`: the database and store, e.g. "postgres, redis" */
function check (name: string, where: string, r: { errors: number, unexpected: number, statuses?: Record<string, number>, error_messages?: string[] }) {
  if (r.errors > 0 || r.unexpected > 0) {
    failures.push(`${name} (${where}): ${r.errors} errors, ${r.unexpected} unexpected statuses ${JSON.stringify(r.statuses ?? {})} ${(r.error_messages ?? []).join('; ')}`)
  }
}

const where = (server: Server) => `${server.db}, ${server.store}`

function row (name: string, server: Server, r: LoadResult, reference: string | null, referenceRps: number | null, extra: Record<string, unknown> = {}, connections = P.connections): Row {
  const out: Row = {
    name,
    db: server.db,
    store: server.store,
    rps: r.rps,
    p50_ms: r.p50_ms,
    p99_ms: r.p99_ms,
    errors: r.errors,
    non2xx: r.non2xx,
    reference,
    ratio: referenceRps ? r.rps / referenceRps : null,
    workers: server.workers,
    reference_rps: referenceRps,
    requests: r.requests,
    connections,
    unexpected: r.unexpected,
    statuses: r.statuses,
    ...extra
  }
  rows.push(out)
  return out
}

const short = (r: LoadResult) => `${r.rps.toFixed(0)} req/s, p99 ${r.p99_ms.toFixed(1)} ms, ${r.errors} errors, ${r.non2xx} non-2xx`

/**
 * C S1 C S2 C ... : the ceiling measured between every two scenarios; each scenario is
 * divided by the mean of the ceiling just before and just after it, so drift cancels.
 */
async function httpGroup (server: Server, ceiling: { url: string, child: Child }, names: string[]) {
  const ceilings: LoadResult[] = []
  const measureCeiling = async () => {
    const r = await load({ ...specOf('ceiling', ceiling.url), cpuPids: () => [ceiling.child.pid] })
    check('ceiling', where(server), r)
    ceilings.push(r)
    log(`  ceiling: ${short(r)}`)
    return r
  }
  let before = await measureCeiling()
  const pending: Array<{ name: string, r: LoadResult, before: LoadResult, conns: number }> = []
  for (const name of names) {
    if (name === 'protected') {
      const probe = await http(server.url, 'GET', '/protected', undefined, bearer(accessTokens[0]))
      if (probe.status === 404) {
        unavailable.push({ name, db: server.db, store: server.store, reason: 'GET /protected answered 404 (compat route not there)' })
        log(`  ${name}: unavailable (404)`)
        continue
      }
    }
    if (name === 'introspect') {
      const probe = await http(server.url, 'POST', '/auth/introspect', { token: accessTokens[1] })
      if (probe.status !== 200 || probe.json().active !== true) failures.push(`introspect probe: ${probe.status} ${probe.text}`)
    }
    const spec = { ...specOf(name, server.url), cpuPids: server.pids }
    const r = await load(spec)
    if (name === 'refresh') {
      // A request cut off at the end may have rotated its token unseen: never use that chain again.
      for (const ch of chains) if (ch.pending) ch.dead = true
    }
    check(name, where(server), r)
    log(`  ${name}: ${short(r)}`)
    pending.push({ name, r, before, conns: spec.connections })
    before = await measureCeiling()
  }
  // ratios once the ceiling after each scenario is known
  for (let i = 0; i < pending.length; i++) {
    const p = pending[i]
    const after = ceilings[ceilings.indexOf(p.before) + 1]
    const ref = (p.before.rps + after.rps) / 2
    const extra: Record<string, unknown> = { ...cpuRatio(p.r.cpu_ms_per_req, [p.before.cpu_ms_per_req, after.cpu_ms_per_req]) }
    if (p.name === 'reject') extra.expected_status = 401
    row(p.name, server, p.r, 'ceiling', ref, extra, p.conns)
  }
  ceilingRuns.push({ db: server.db, store: server.store, runs: ceilings })
}

/** One `ceiling` row per database and store: every ceiling run of that pair's groups. */
function ceilingRows () {
  for (const db of DBS) {
    for (const store of ['memory', 'redis'] as const) {
      const c = ceilingRuns.filter((x) => x.db === db && x.store === store).flatMap((x) => x.runs)
      if (c.length === 0) continue
      rows.push({
        name: 'ceiling',
        db,
        store,
        rps: mean(c.map((x) => x.rps)),
        p50_ms: mean(c.map((x) => x.p50_ms)),
        p99_ms: mean(c.map((x) => x.p99_ms)),
        errors: c.reduce((a, x) => a + x.errors, 0),
        non2xx: c.reduce((a, x) => a + x.non2xx, 0),
        reference: null,
        ratio: null,
        workers: 1,
        reference_rps: null,
        requests: c.reduce((a, x) => a + x.requests, 0),
        connections: P.connections,
        unexpected: c.reduce((a, x) => a + x.unexpected, 0),
        cpu_ms_per_req: mean(c.map((x) => x.cpu_ms_per_req ?? 0)),
        runs: c.map((x) => Math.round(x.rps))
      })
    }
  }
}

/** B login B register B: logins against what bare bcrypt does on this machine. */
async function bcryptGroup (server: Server) {
  const refs: BcryptResult[] = []
  const ref = async () => {
    const b = await bcryptReference()
    refs.push(b)
    log(`  bcrypt: ${b.rps.toFixed(2)} ops/s (${b.ops} ops, ${b.threads} threads, counted ${b.rps_counted.toFixed(2)}), ${b.cpu_ms_per_op?.toFixed(0)} CPU ms/op`)
  }
  const results: Array<{ name: string, r: LoadResult, i: number }> = []
  await ref()
  for (const name of QUICK ? ['login', 'register'] : ['login', 'register']) {
    const r = await load({ ...specOf(name, server.url), cpuPids: server.pids })
    check(name, where(server), r)
    log(`  ${name}: ${r.rps.toFixed(2)} req/s (counted ${r.rps_counted.toFixed(2)}), p99 ${r.p99_ms.toFixed(0)} ms, ${r.cpu_ms_per_req?.toFixed(0)} CPU ms/req, ${r.errors} errors, ${r.non2xx} non-2xx`)
    results.push({ name, r, i: refs.length - 1 })
    if (!QUICK) await ref()
  }
  if (QUICK) await ref()
  for (const { name, r, i } of results) {
    const after = refs[Math.min(i + 1, refs.length - 1)]
    const refRps = (refs[i].rps + after.rps) / 2
    row(name, server, r, 'bcrypt', refRps, { rps_counted: r.rps_counted, ...cpuRatio(r.cpu_ms_per_req, [refs[i].cpu_ms_per_op, after.cpu_ms_per_op]) }, P.bcryptConnections)
  }
  rows.push({
    name: 'bcrypt',
    db: server.db,
    store: server.store,
    rps: mean(refs.map((b) => b.rps)),
    p50_ms: mean(refs.map((b) => b.p50_ms)),
    p99_ms: mean(refs.map((b) => b.p99_ms)),
    errors: 0,
    non2xx: 0,
    reference: null,
    ratio: null,
    workers: 1,
    reference_rps: null,
    requests: refs.reduce((a, b) => a + b.ops, 0),
    connections: refs[0].inflight,
    unexpected: 0,
    runs: refs.map((b) => Number(b.rps.toFixed(2))),
    threads: refs[0].threads,
    cpu_ms_per_req: mean(refs.map((b) => b.cpu_ms_per_op ?? 0))
  })
}

/** Reads at a fixed pace, alone and then while a login storm keeps every bcrypt thread busy. */
async function mixed (server: Server) {
  const me = rows.find((r) => r.name === 'me' && r.db === server.db && r.store === server.store)
  const rate = Math.max(100, Math.min(1000, Math.round(((me?.rps ?? 1000) * 0.2) / 50) * 50))
  const reads = (): LoadSpec => ({ ...specOf('me', server.url, 2), overallRate: rate, warmup: 0.5, duration: P.readsDuration })
  const alone = await load(reads())
  check('mixed-alone', where(server), alone)
  log(`  reads alone at ${rate}/s: ${short(alone)}`)

  const storm = load({ ...specOf('login', server.url), warmup: 0, duration: P.stormWarmup + 0.5 + P.readsDuration + 0.5 })
  await sleep(P.stormWarmup * 1000)
  const under = await load(reads())
  const s = await storm
  check('mixed', where(server), under)
  check('mixed (login storm)', where(server), s)
  log(`  reads under a login storm: ${short(under)}; storm ${s.rps.toFixed(2)} logins/s`)
  row('mixed-alone', server, alone, null, null, { paced_rate: rate }, 2)
  row('mixed', server, under, 'mixed-alone', alone.rps, {
    paced_rate: rate,
    p99_alone_ms: alone.p99_ms,
    p99_ratio: alone.p99_ms > 0 ? under.p99_ms / alone.p99_ms : null,
    storm_logins_rps: s.rps
  }, 2)
}

/** RSS after the run, then after one more `me` round: it must not grow. */
async function memoryCheck (server: Server) {
  const afterRun = server.pids().map((pid) => ({ pid, rss_mb: rssMb(pid) }))
  const repeat = await load(specOf('me', server.url))
  check('me (repeat)', where(server), repeat)
  const afterRepeat = server.pids().map((pid) => ({ pid, rss_mb: rssMb(pid) }))
  const total = (xs: Array<{ rss_mb: number | null }>) => xs.reduce((a, x) => a + (x.rss_mb ?? 0), 0)
  const entry = {
    db: server.db,
    store: server.store,
    workers: server.workers,
    rss_after_run_mb: Number(total(afterRun).toFixed(1)),
    rss_after_repeat_mb: Number(total(afterRepeat).toFixed(1)),
    growth_mb: Number((total(afterRepeat) - total(afterRun)).toFixed(1)),
    per_process: afterRepeat.map((x, i) => ({ pid: x.pid, after_run_mb: afterRun[i]?.rss_mb ?? null, after_repeat_mb: x.rss_mb })),
    repeat_me_rps: Math.round(repeat.rps)
  }
  memoryReport.push(entry)
  log(`  RSS ${entry.rss_after_run_mb} MB after the run, ${entry.rss_after_repeat_mb} MB after a repeated me round (${repeat.rps.toFixed(0)} req/s)`)
}

async function redisReachable (): Promise<Redis | null> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1500, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return client
  } catch {
    client.disconnect()
    return null
  }
}

async function cleanRedis (client: Redis) {
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `bench:${RUN_ID}:*`, 'COUNT', 500)
    cursor = next
    if (keys.length > 0) deleted += await client.del(...keys)
  } while (cursor !== '0')
  return deleted
}

function machine (redisVersion: string | null, postgresVersion: string | null) {
  let commit: string | null = null
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim() } catch {}
  const cpu = cpus()
  return {
    cpus: cpu.length,
    cpu_model: cpu[0]?.model ?? 'unknown',
    memory_mb: Math.round(totalmem() / 1024 / 1024),
    node: process.version,
    os: `${process.platform} ${release()}`,
    loadavg_start: loadavg().map((x) => Number(x.toFixed(2))),
    uv_threadpool_size: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    bcrypt_cost: BCRYPT_COST,
    redis: redisVersion,
    db: DBS,
    ...(postgresVersion === null ? {} : { postgres: postgresVersion }),
    commit,
    quick: QUICK,
    jwt_alg: ALG ?? 'HS256',
    started_at: new Date().toISOString(),
    params: P
  }
}

/**
 * Every round on one database: memory store, then Redis, then Redis with WORKERS=2 (or, with
 * --alg, `me` and `reject` on the memory store), with a ceiling started for this database's
 * `GET /users/me` body.
 */
async function pass (database: Database, redis: Redis | null) {
  const db = database.kind
  let ceiling: { child: Child, url: string } | null = null
  let server: Server | null = null
  try {
    // Round 1: memory store, a fresh database.
    server = await startServer(database, { redis: false, workers: 1, label: 'memory' })
    log(`${db}: service up (memory store), pid ${server.child.pid}`)
    await seed(server)
    const sample = await http(server.url, 'GET', '/users/me', undefined, bearer(accessTokens[0]))
    if (sample.status !== 200) throw new Error(`GET /users/me: ${sample.status} ${sample.text}`)
    ceiling = await startCeiling(sample.text)
    const probe = await http(ceiling.url, 'GET', '/users/me')
    if (probe.text.length !== sample.text.length) throw new Error(`ceiling body is ${probe.text.length} bytes, /users/me ${sample.text.length}`)
    log(`ceiling up, pid ${ceiling.child.pid}, body ${sample.text.length} bytes`)

    if (ALG !== undefined) {
      // Only what the algorithm changes: verifying (me) and refusing (reject) tokens.
      log(`${db}, memory, ${ALG}: me and reject against the ceiling (${P.connections} connections)`)
      await httpGroup(server, ceiling, ['me', 'reject'])
      for (const r of rows) r.jwt_alg = ALG
      await server.child.stop()
      server = null
      return
    }
    log(`${db}, memory: login and register against bcrypt`)
    await bcryptGroup(server)
    log(`${db}, memory: HTTP scenarios against the ceiling (${P.connections} connections)`)
    await httpGroup(server, ceiling, ['me', 'protected', 'introspect', 'reject', 'refresh'])
    log(`${db}, memory: mixed`)
    await mixed(server)
    await memoryCheck(server)
    await server.child.stop()
    server = null

    if (!redis) {
      unavailable.push({ name: 'me', db, store: 'redis', reason: `Redis not reachable at ${REDIS_URL}` })
      return
    }
    // Round 2: the same database (its users and sessions), the blocklist in Redis.
    server = await startServer(database, { redis: true, workers: 1, label: 'redis' })
    log(`${db}: service up (Redis store), pid ${server.child.pid}`)
    await httpGroup(server, ceiling, QUICK ? ['me', 'reject'] : ['me', 'protected', 'introspect', 'reject', 'refresh'])
    await memoryCheck(server)
    await server.child.stop()
    server = null

    // WORKERS=2 (node:cluster), Redis: `me` again, against its own ceilings.
    server = await startServer(database, { redis: true, workers: 2, label: 'workers2' })
    log(`${db}: service up (Redis store, WORKERS=2), pids ${server.pids().join(', ')}`)
    const cpuBefore = server.pids().map((p) => cpuSeconds(p) ?? 0)
    await httpGroup(server, ceiling, ['me'])
    const cpuAfter = server.pids().map((p) => cpuSeconds(p) ?? 0)
    const last = rows.filter((r) => r.name === 'me' && r.db === db && r.workers === 2).pop()
    if (last) last.cpu_seconds_per_process = cpuAfter.map((c, i) => Number((c - cpuBefore[i]).toFixed(2)))
    const rss = server.pids().map((pid) => ({ pid, rss_mb: rssMb(pid) }))
    memoryReport.push({ db, store: 'redis', workers: 2, rss_after_run_mb: Number(rss.reduce((a, x) => a + (x.rss_mb ?? 0), 0).toFixed(1)), per_process: rss })
    log(`  WORKERS=2 RSS: ${rss.map((x) => `${x.pid}: ${x.rss_mb?.toFixed(1)} MB`).join(', ')}`)
    await server.child.stop()
    server = null
  } finally {
    if (server) await server.child.stop()
    if (ceiling) await ceiling.child.stop()
  }
}

// --- main -----------------------------------------------------------------------------

async function main () {
  if (!existsSync(SERVER_ENTRY)) throw new Error(`${SERVER_ENTRY} is missing: run npm run build (npm run bench does)`)
  if (SAVE && QUICK) throw new Error('--save keeps full runs only: drop --quick')
  // bench/.tmp/profiles holds the service's CPU profiles with --profile
  if (PROFILE) mkdirSync(join(__dirname, '.tmp', 'profiles'), { recursive: true })
  const dir = mkdtempSync(join(tmpdir(), 'auth-bench-'))
  const redis = await redisReachable()
  let redisVersion: string | null = null
  if (redis) redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown'
  let postgresVersion: string | null = null
  if (DBS.includes('postgres')) {
    try {
      postgresVersion = (await adminQuery('SHOW server_version')).rows[0].server_version as string
    } catch (err) {
      redis?.disconnect()
      throw new Error(`--db ${DBS.join('+')}: PostgreSQL at ${new URL(POSTGRES_URL).host} is unreachable (${(err as Error).message})`)
    }
  }
  const info = machine(redisVersion, postgresVersion)
  log(`${QUICK ? 'quick' : 'full'} run ${RUN_ID}: ${info.cpus} cpus, bcrypt cost ${BCRYPT_COST}, ${DBS.map((d) => d === 'postgres' ? `PostgreSQL ${postgresVersion}` : 'SQLite').join(' then ')}, Redis ${redis ? `${redisVersion} at ${REDIS_URL}` : 'not reachable: memory store only'}`)

  if (ALG !== undefined) {
    const jwk = await generateSigningJwk(ALG)
    keysFile = join(dir, 'keys.json')
    writeFileSync(keysFile, JSON.stringify({ keys: [jwk] }), { mode: 0o600 })
    signingKey = parseKeySet(readFileSync(keysFile, 'utf8'), ALG)[0]
    log(`JWT_ALG=${ALG}: one generated key, kid ${signingKey.kid}`)
  }

  try {
    for (const kind of DBS) {
      resetState()
      const database = await openDatabase(kind, dir)
      try {
        await pass(database, redis)
      } finally {
        await stopAll()
        await database.drop()
      }
    }
  } finally {
    await stopAll()
    await runCleanups()
    if (redis) {
      await cleanRedis(redis).then((n) => log(`removed ${n} Redis keys of this run`), (err: Error) => log(`Redis cleanup failed: ${err.message}`))
      redis.disconnect()
    }
    rmSync(dir, { recursive: true, force: true })
  }

  // --- report ---------------------------------------------------------------------------
  ceilingRows()
  // per database (SQLite first): memory rows, then Redis with WORKERS=1, WORKERS=2, and the Redis ceiling last
  const order = (r: Row) => (dbOf(r) === 'sqlite' ? 0 : 100) + (r.store === 'memory' ? 0 : r.name === 'ceiling' ? 30 : 10) + (r.workers - 1) * 10
  const sorted = [...rows].sort((a, b) => order(a) - order(b))
  const targets = evaluateTargets(sorted)
  // The revocation feed's cost (bench/feed.ts: a service of its own, windows alternated), informational.
  if (ALG === undefined) targets.push({ target: 'revocation feed', value: feedSummary(await feedBench({ quick: QUICK, log })), met: null })
  // TOTP login and the rehash's cost (bench/accounts.ts: services of its own, windows alternated), informational.
  if (ALG === undefined) for (const [k, v] of Object.entries(accountsSummary(await accountsBench({ quick: QUICK, log })))) targets.push({ target: `accounts ${k}`, value: v, met: null })
  const elapsed = (performance.now() - T0) / 1000
  const results: Results = {
    machine: { ...info, loadavg_end: loadavg().map((x) => Number(x.toFixed(2))), elapsed_s: Number(elapsed.toFixed(1)) },
    scenarios: sorted.map((r) => ({
      ...r,
      rps: Number(r.rps.toFixed(2)),
      p50_ms: Number(r.p50_ms.toFixed(3)),
      p99_ms: Number(r.p99_ms.toFixed(3)),
      ratio: r.ratio === null ? null : Number(r.ratio.toFixed(3)),
      reference_rps: r.reference_rps === null ? null : Number(r.reference_rps.toFixed(2))
    })),
    unavailable,
    memory: memoryReport as MemoryEntry[],
    targets,
    failures
  }
  // A run that failed is never committed, --save or not; nor is a quick one. A full run keeps
  // the committed per-algorithm runs; an --alg run replaces its own algorithm's entry only.
  const save = SAVE && failures.length === 0 && !QUICK
  const file = ALG === undefined ? (save ? COMMITTED_RESULTS : LATEST_RESULTS) : join(__dirname, '.tmp', `results-${ALG}.json`)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
  if (save) {
    const committed = readResults()
    const saved: Results = ALG === undefined
      ? { ...results, ...(committed.algorithms === undefined ? {} : { algorithms: committed.algorithms }) }
      : { ...committed, algorithms: { ...committed.algorithms, [ALG]: { machine: results.machine, scenarios: results.scenarios } } }
    writeFileSync(COMMITTED_RESULTS, JSON.stringify(saved, null, 2) + '\n')
    updateReadmes(saved)
  }

  // The verifier plugin against @fastify/jwt (bench/verifier.ts): its own processes, its own table.
  const verifierRun = ALG === undefined ? await verifierBench({ quick: QUICK, log }) : null
  const out: string[] = ['', summary(results), ...(verifierRun === null ? [] : ['', verifierRun.text])]
  out.push('', 'targets:')
  for (const t of targets) out.push(`  ${t.met === null ? 'n/a ' : t.met ? 'met ' : 'MISS'}  ${t.target}: ${t.value}`)
  out.push('', `${QUICK ? 'quick' : 'full'} run${ALG === undefined ? '' : ` (JWT_ALG=${ALG})`} in ${elapsed.toFixed(0)} s; results in ${relative(ROOT, file)}` +
    (save ? `${ALG === undefined ? '' : ` and JWT_ALG=${ALG} in ${relative(ROOT, COMMITTED_RESULTS)}`} and the tables of README.md and bench/README.md (commit them)` : ' (npm run bench -- --save replaces the committed ones)'))
  if (failures.length > 0) {
    out.push('', 'FAILED: errors or unexpected statuses in scenarios that must succeed:')
    for (const f of failures) out.push(`  ${f}`)
    if (SAVE) out.push('', 'not saved: bench/results.json keeps the last good run')
  }
  process.stdout.write(out.join('\n') + '\n')
  process.exitCode = failures.length > 0 ? 1 : 0
}

function evaluateTargets (all: Row[]) {
  const out: Array<{ target: string, value: string, met: boolean | null }> = []
  for (const db of DBS) {
    // SQLite's targets keep their names of before --db; PostgreSQL's say so.
    const tag = (what: string) => db === 'sqlite' ? what : `postgres, ${what}`
    const find = (name: string, store: string, workers = 1) => all.find((r) => r.name === name && dbOf(r) === db && r.store === store && r.workers === workers)
    const ratioTarget = (target: string, r: Row | undefined, min: number) => ({
      target,
      value: r?.ratio == null ? 'not measured' : r.ratio.toFixed(2),
      met: r?.ratio == null ? null : r.ratio >= min
    })
    out.push(
      ratioTarget(`me (${tag('memory')}) >= 0.60 of ceiling`, find('me', 'memory'), 0.60),
      ratioTarget(`me (${tag('redis')}) >= 0.45 of ceiling`, find('me', 'redis'), 0.45),
      ratioTarget(`reject (${tag('memory')}) >= 0.80 of ceiling`, find('reject', 'memory'), 0.80),
      ratioTarget(`reject (${tag('redis')}) >= 0.80 of ceiling`, find('reject', 'redis'), 0.80),
      ratioTarget(`login${db === 'sqlite' ? '' : ' (postgres)'} >= 0.90 of bcrypt`, find('login', 'memory'), 0.90)
    )
    const m = find('mixed', 'memory')
    const pr = m?.p99_ratio as number | null | undefined
    out.push({ target: `mixed${db === 'sqlite' ? '' : ' (postgres)'}: reads p99 under a login storm <= 5x alone`, value: pr == null ? 'not measured' : `x${pr.toFixed(2)}`, met: pr == null ? null : pr <= 5 })
    for (const mem of memoryReport) {
      if (mem.workers !== 1 || dbOf(mem) !== db) continue
      const after = mem.rss_after_repeat_mb as number
      out.push({ target: `RSS (${tag(mem.store as string)}) after the run < 150 MB`, value: `${after} MB`, met: after < 150 })
      const growth = mem.growth_mb as number
      // "No growth": within 5% or 5 MB of the first measurement, whichever is larger (GC noise).
      const tolerance = Math.max(5, (mem.rss_after_run_mb as number) * 0.05)
      out.push({ target: `RSS (${tag(mem.store as string)}) no growth across a repeated run (tolerance ${tolerance.toFixed(1)} MB)`, value: `${growth >= 0 ? '+' : ''}${growth} MB`, met: growth <= tolerance })
    }
    const w1 = find('me', 'redis', 1)
    const w2 = find('me', 'redis', 2)
    out.push({ target: `me with WORKERS=2 vs WORKERS=1 (${tag('Redis')}), informational`, value: w1 && w2 ? `${w2.rps.toFixed(0)} vs ${w1.rps.toFixed(0)} req/s (x${(w2.rps / w1.rps).toFixed(2)})` : 'not measured', met: null })
  }
  if (DBS.length === 2) {
    // The point of --db both: the two databases in one machine state.
    for (const [name, store] of [['me', 'memory'], ['refresh', 'memory'], ['login', 'memory'], ['me', 'redis'], ['refresh', 'redis']] as const) {
      const lite = all.find((r) => r.name === name && dbOf(r) === 'sqlite' && r.store === store && r.workers === 1)
      const post = all.find((r) => r.name === name && dbOf(r) === 'postgres' && r.store === store && r.workers === 1)
      if (!lite || !post) continue
      out.push({
        target: `${name} (${store}) PostgreSQL vs SQLite, informational`,
        value: `ratio ${post.ratio?.toFixed(2) ?? '-'} vs ${lite.ratio?.toFixed(2) ?? '-'}; CPU ${fmtMs(post.cpu_ms_per_req)} vs ${fmtMs(lite.cpu_ms_per_req)} ms/req`,
        met: null
      })
    }
  }
  return out
}

const fmtMs = (x: unknown) => typeof x === 'number' ? x.toFixed(x < 1 ? 3 : 0) : '-'

let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (interrupted) process.exit(130)
    interrupted = true
    log(`${signal}: stopping child processes`)
    stopAll().then(runCleanups).finally(() => process.exit(130))
  })
}

main().catch(async (err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err)
  await stopAll()
  process.exit(1)
})
