/**
 * What one request costs the service, its database and Redis: for each kind of request,
 * N requests one at a time against the built service (a production process, as
 * bench/run.ts starts it), and per request:
 *
 * - CPU of the service process (every thread: bcrypt's pool included), from /proc/<pid>/stat
 *   (utime + stime, 10 ms ticks) and from /proc/<pid>/task/<tid>/schedstat (nanoseconds),
 *   minus what the process spends idle over the same time (heartbeats, timers);
 * - database statements and transactions (explicit, and autocommit statements), counted at
 *   the driver by a preload (bench/lib/db-counter.cjs; SQLite runs inside the process, so
 *   nothing outside can see its statements). On PostgreSQL also round trips, and the
 *   server's own count: xact_commit + xact_rollback of pg_stat_database for the run's
 *   database (pg_stat_statements only if the server preloads it: checked, and said), and
 *   the on-CPU time of the PostgreSQL backends serving that database (schedstat);
 * - Redis commands (with --redis): a private redis-server on a free port, so that only this
 *   run's commands count: INFO commandstats before and after each kind, and MONITOR to tell
 *   the replica's heartbeats (every 50 ms, whatever the traffic) from the requests' own; and
 *   Redis's time executing them (commandstats usec: an upper bound, MONITOR slows a script
 *   down and one request at a time finds cold caches).
 *
 * One request at a time is not the service under load: with many connections one event-loop
 * turn serves many requests and the per-request CPU falls several-fold (npm run bench's
 * `CPU ms/req` is that figure). The counts (statements, round trips, commands) do not change.
 *
 *   npx tsx bench/costs.ts [--db sqlite|postgres] [--redis] [--rate-limits off] [--reads N]
 *
 * Rate limits are on (as deployed) unless `--rate-limits off`. Prints a table and merges the
 * run into bench/.tmp/costs.json under "<db>+<store>". Needs `npm run build` first.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import pg from 'pg'
import { cpuSeconds, freePort, sleep, startChild, stopAll, type Child } from './lib/procs'
import { http } from './lib/http'

const ROOT = join(__dirname, '..')
const SERVER_ENTRY = join(ROOT, 'dist', 'src', 'server.js')
const COUNTER = join(__dirname, 'lib', 'db-counter.cjs')
const OUT = join(__dirname, '.tmp', 'costs.json')
const START_FLAGS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string)
  .split(/\s+/).filter((arg) => arg.startsWith('--'))

const arg = (name: string) => {
  const at = process.argv.indexOf(name)
  return at < 0 ? undefined : process.argv[at + 1]
}
const DB = (arg('--db') ?? 'sqlite') as 'sqlite' | 'postgres'
if (DB !== 'sqlite' && DB !== 'postgres') throw new Error('--db takes sqlite or postgres')
const REDIS = process.argv.includes('--redis')
const RATE_LIMITS = arg('--rate-limits') !== 'off'
const READS = Number(arg('--reads') ?? 1000)
const USERS = 12
const BCRYPT_COST = Number(process.env.BCRYPT_COST ?? 12)
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const RUN_ID = randomBytes(3).toString('hex')
const PREFIX = 'costs:'

const T0 = performance.now()
const log = (msg: string) => { process.stderr.write(`[costs ${((performance.now() - T0) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`) }

// --- measuring ----------------------------------------------------------------------------

/** On-CPU time of every live thread of the process, in ms (schedstat: nanoseconds). */
function schedMs (pid: number): number {
  let ns = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) } catch {}
  }
  return ns / 1e6
}

interface Cpu { statMs: number, schedMs: number, at: number }
const cpuNow = (pid: number): Cpu => ({ statMs: (cpuSeconds(pid) ?? NaN) * 1000, schedMs: schedMs(pid), at: performance.now() })

interface DbCounts { seq: number, statements: number, transactions: number, roundTrips: number, connections: number, background: { statements: number, transactions: number, roundTrips: number }, byText: Record<string, number> }

/** The preload's counts: SIGUSR2 makes it write them; wait for a newer sequence number. */
async function dbCounts (pid: number, file: string, last: number): Promise<DbCounts> {
  process.kill(pid, 'SIGUSR2')
  const deadline = Date.now() + 3000
  for (;;) {
    try {
      const c = JSON.parse(readFileSync(file, 'utf8')) as DbCounts
      if (c.seq > last) return c
    } catch {}
    if (Date.now() > deadline) throw new Error('the service did not write its database counts (is bench/lib/db-counter.cjs preloaded?)')
    await sleep(10)
  }
}

async function pgXacts (admin: pg.Client, name: string): Promise<number> {
  const { rows } = await admin.query('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1', [name])
  return Number(rows[0].n)
}

/** The PostgreSQL backends serving a database (the service's pool, and any other client of it). */
async function pgBackends (admin: pg.Client, name: string): Promise<number[]> {
  const { rows } = await admin.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name])
  return rows.map((r) => Number(r.pid))
}

/** On-CPU ms of each of these processes (those still there) */
function schedMsOf (pids: number[]): Map<number, number> {
  const out = new Map<number, number>()
  for (const pid of pids) { try { out.set(pid, schedMs(pid)) } catch {} }
  return out
}

/** CPU ms spent between two readings: a process that appeared counts whole (it started in between), one that left counts nothing */
function spent (before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0
  for (const [pid, now] of after) ms += now - (before.get(pid) ?? 0)
  return ms
}

interface CommandStat { calls: number, usec: number }
function commandStats (info: string): Record<string, CommandStat> {
  const out: Record<string, CommandStat> = {}
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) }
  return out
}

/** Commands of ours (the measuring connection) and of connection set-up: never a request's. */
const OURS = new Set(['info', 'echo', 'monitor', 'client', 'config', 'hello', 'select', 'command'])
const notOurs = (e: MonitorEvent) => !OURS.has(e.args[0].toLowerCase())

interface MonitorEvent { args: string[], source: string }

// --- the service --------------------------------------------------------------------------

function expectStatus (what: string, res: { status: number, text: string }, status: number) {
  if (res.status !== status) throw new Error(`${what}: ${res.status} (expected ${status}) ${res.text.slice(0, 200)}`)
}

interface Phase {
  kind: string
  /** bursts of requests sent one at a time; CPU is measured over the bursts only, not the pauses between them */
  bursts: Array<() => Promise<number>>
  pauseMs?: number
  /** unmeasured requests first (JIT), for kinds cheap enough to repeat */
  warmup?: () => Promise<void>
  note?: string
}

interface PhaseResult {
  kind: string
  n: number
  wall_ms_per_req: number
  cpu_ms_per_req_stat: number
  cpu_ms_per_req_sched: number
  /** less what the process spends idle (median rate) over the same wall time */
  cpu_ms_per_req_net: number
  cpu_background_ms: number
  db_statements: number
  db_transactions: number
  db_round_trips: number | null
  /** pg_stat_database's xact_commit + xact_rollback, less the reconciliation's and the start-up transaction of each connection opened */
  pg_xacts: number | null
  pg_connections_opened: number | null
  db_statements_by_text: Record<string, number>
  redis_sent: number | null
  redis_run: number | null
  redis_by_command: Record<string, number> | null
  /** INFO commandstats's count over the requests, heartbeats taken out: the check on redis_run */
  redis_commandstats: number | null
  redis_background: number | null
  /** Redis's time executing the requests' commands, microseconds per request (INFO commandstats) */
  redis_usec: number | null
  /** on-CPU ms of the PostgreSQL backends serving the run's database, per request; net: less their idle rate (the reconciliation) */
  pg_cpu_ms_per_req: number | null
  pg_cpu_ms_per_req_net: number | null
  note?: string
}

/** Set while this run's PostgreSQL database exists: main's end and SIGINT both drop it. */
let dropDatabase: (() => Promise<void>) | null = null

async function main () {
  if (!existsSync(SERVER_ENTRY)) throw new Error(`${SERVER_ENTRY} is missing: run npm run build`)
  const dir = mkdtempSync(join(tmpdir(), 'auth-costs-'))
  const countsFile = join(dir, 'db-counts.json')
  const load0 = loadavg().map((x) => Number(x.toFixed(2)))
  let admin: pg.Client | null = null
  let pgName: string | null = null
  let redis: Redis | null = null
  let monitor: Redis | null = null
  let pgStatStatements = 'not checked (SQLite)'
  try {
    // --- database
    let databaseUrl = `file:${join(dir, 'auth.db')}`
    if (DB === 'postgres') {
      admin = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
      admin.on('error', () => {})
      await admin.connect()
      pgName = `costs_${RUN_ID}`
      await admin.query(`CREATE DATABASE ${pgName}`)
      const name = pgName
      dropDatabase = async () => {
        dropDatabase = null
        await admin!.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err: Error) => log(`could not drop ${name}: ${err.message}`))
      }
      const url = new URL(POSTGRES_URL)
      url.pathname = `/${pgName}`
      databaseUrl = url.toString()
      const preload = (await admin.query('SHOW shared_preload_libraries')).rows[0].shared_preload_libraries as string
      const available = (await admin.query("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'")).rowCount! > 0
      pgStatStatements = preload.split(',').map((s) => s.trim()).includes('pg_stat_statements')
        ? 'preloaded, not used: the driver counts give the same per statement'
        : `unavailable: ${available ? 'installed but' : 'not installed, and'} not in shared_preload_libraries ("${preload}"), which only a server restart changes; statements counted at the driver`
      log(`PostgreSQL database ${pgName}; pg_stat_statements: ${pgStatStatements}`)
    }

    // --- a private Redis: only this run's commands in its counters
    let redisUrl: string | undefined
    if (REDIS) {
      const port = await freePort()
      const server = startChild('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { PATH: process.env.PATH })
      redisUrl = `redis://127.0.0.1:${port}`
      redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      redis.on('error', () => {})
      const deadline = Date.now() + 10_000
      for (;;) {
        try { await redis.connect(); await redis.ping(); break } catch {}
        if (server.exited() || Date.now() > deadline) throw new Error(`redis-server did not start:\n${server.output()}`)
        await sleep(100)
      }
      log(`private redis-server on port ${port}, pid ${server.pid}`)
    }

    // --- the service, with the counting preload
    const port = await freePort()
    const service: Child = startChild('service', process.execPath, ['--require', COUNTER, ...START_FLAGS, SERVER_ENTRY], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      JWT_SECRET: randomBytes(48).toString('base64url'),
      MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64'), // required in production while enrolment is on
      BCRYPT_COST: String(BCRYPT_COST),
      RATE_LIMITS: RATE_LIMITS ? 'on' : 'off',
      LOG_LEVEL: 'warn',
      WORKERS: '1',
      BENCH_DB_KIND: DB,
      BENCH_DB_COUNTS_FILE: countsFile,
      ...(redisUrl ? { REDIS_URL: redisUrl, REDIS_PREFIX: PREFIX } : {})
    })
    const base = `http://127.0.0.1:${port}`
    const deadline = Date.now() + 30_000
    for (;;) {
      if (service.exited()) throw new Error(`the service exited at start:\n${service.output()}`)
      try { if ((await http(base, 'GET', '/health')).status === 200) break } catch {}
      if (Date.now() > deadline) throw new Error(`the service did not answer /health in 30 s:\n${service.output()}`)
      await sleep(50)
    }
    const pid = service.pid
    log(`service up, pid ${pid} (${DB}, ${REDIS ? 'Redis' : 'memory'} store, rate limits ${RATE_LIMITS ? 'on' : 'off'}, bcrypt cost ${BCRYPT_COST})`)

    // The subscriber connection (the replica's) sends only heartbeat PINGs once subscribed.
    let subscriber: string | null = null
    const events: MonitorEvent[] = []
    if (redis) {
      const list = await redis.client('LIST') as string
      subscriber = /addr=(\S+).*\bsub=[1-9]/.exec(list.split('\n').find((l) => /\bsub=[1-9]/.test(l)) ?? '')?.[1] ?? null
      monitor = await redis.monitor() as Redis
      monitor.on('monitor', (_time: string, args: string[], source: string) => { events.push({ args, source }) })
    }
    /**
     * The replica's heartbeat: an MGET of the sequence and marker keys (a read of a token is an
     * MGET that starts with the marker), PING on the subscriber connection.
     */
    const background = (e: MonitorEvent) =>
      e.source === subscriber || (e.args[0].toLowerCase() === 'mget' && e.args[1] === `${PREFIX}seq`)

    /** Monitor events up to our marker (ECHO): everything Redis ran before it has been seen. */
    const drainMonitor = async () => {
      if (!redis) return []
      const mark = `costs-mark-${randomBytes(4).toString('hex')}`
      await redis.echo(mark)
      const deadline = Date.now() + 3000
      for (;;) {
        const at = events.findIndex((e) => e.args[0].toLowerCase() === 'echo' && e.args[1] === mark)
        if (at >= 0) return events.splice(0, at + 1)
        if (Date.now() > deadline) throw new Error('MONITOR did not deliver the marker')
        await sleep(10)
      }
    }

    let dbSeq = 0
    /**
     * A PostgreSQL backend reports its counts to pg_stat_database when it goes idle, but at
     * most once a second, else only after 10 s idle: read until the server's total agrees
     * with the driver's (both count every transaction of the service since it started,
     * migrations included; the server also one per connection opened, for its start-up),
     * for at most 12 s. `offset` is their difference at the start (0 when all is counted).
     */
    let offset = 0
    let unsettled = 0
    const snapshot = async () => {
      const deadline = Date.now() + 12_000
      for (;;) {
        const counts = await dbCounts(pid, countsFile, dbSeq)
        dbSeq = counts.seq
        const xacts = admin && pgName ? await pgXacts(admin, pgName) : null
        const expected = counts.transactions + counts.connections + offset
        if (xacts === null || xacts === expected || Date.now() > deadline) {
          if (xacts !== null && xacts !== expected) unsettled++
          return { db: counts, xacts, redis: redis ? commandStats(await redis.info('commandstats')) : null }
        }
        await sleep(250)
      }
    }
    const settle = () => sleep(200)
    if (DB === 'postgres') {
      const first = await snapshot()
      offset = first.xacts! - first.db.transactions - first.db.connections
      unsettled = 0
      log(`pg_stat_database: ${first.xacts} transactions; the driver counted ${first.db.transactions} and ${first.db.connections} connections${offset === 0 ? '' : ` (offset ${offset} kept)`}`)
    }

    // --- idle: what the process spends with no request at all
    await sleep(1000)
    await drainMonitor()
    // eight half-second windows; their median, so that one burst of the machine's noise
    // (or a GC) does not become every request's background
    const windows: number[] = []
    const idlePg0 = schedMsOf(admin && pgName ? await pgBackends(admin, pgName) : [])
    const idleCpu0 = cpuNow(pid)
    for (let w = 0, last = idleCpu0; w < 8; w++) {
      await sleep(500)
      const now = cpuNow(pid)
      windows.push((now.schedMs - last.schedMs) / ((now.at - last.at) / 1000))
      last = now
    }
    const idleCpu1 = cpuNow(pid)
    const idlePg1 = schedMsOf(admin && pgName ? await pgBackends(admin, pgName) : [])
    const idleEvents = (await drainMonitor()).filter(notOurs)
    const idleSeconds = (idleCpu1.at - idleCpu0.at) / 1000
    const sorted = [...windows].sort((a, b) => a - b)
    const idle = {
      seconds: Number(idleSeconds.toFixed(2)),
      cpu_ms_per_s_sched: Number(((sorted[3] + sorted[4]) / 2).toFixed(3)),
      cpu_ms_per_s_sched_windows: windows.map((x) => Number(x.toFixed(2))),
      cpu_ms_per_s_stat: Number(((idleCpu1.statMs - idleCpu0.statMs) / idleSeconds).toFixed(1)),
      pg_cpu_ms_per_s: pgName ? Number((spent(idlePg0, idlePg1) / idleSeconds).toFixed(3)) : null,
      redis_commands_per_s: redis ? Number((idleEvents.length / idleSeconds).toFixed(1)) : null,
      redis_by_command: redis ? countBy(idleEvents) : null
    }
    log(`idle: ${idle.cpu_ms_per_s_sched} CPU ms/s${redis ? `, ${idle.redis_commands_per_s} Redis commands/s ${JSON.stringify(idle.redis_by_command)}` : ''}`)

    // --- the requests
    const users = Array.from({ length: USERS }, (_, i) => ({ username: `c${RUN_ID}_${i}`, password: `costs-password-${randomBytes(6).toString('hex')}`, id: '' }))
    const sessions: Array<{ access: string, refresh: string }> = []
    const tokens: string[] = []
    const one = (fn: (i: number) => Promise<void>, n: number) => async () => {
      for (let i = 0; i < n; i++) await fn(i)
      return n
    }
    const meOnce = async (i: number) => { expectStatus('GET /users/me', await http(base, 'GET', '/users/me', undefined, { authorization: `Bearer ${tokens[i % tokens.length]}` }), 200) }
    const introspectOnce = async (i: number) => {
      const res = await http(base, 'POST', '/auth/introspect', { token: tokens[i % tokens.length] })
      expectStatus('POST /auth/introspect', res, 200)
      if (res.json().active !== true) throw new Error(`introspect: ${res.text}`)
    }
    const phases: Phase[] = [
      {
        kind: 'register',
        bursts: [one(async (i) => {
          const res = await http(base, 'POST', '/auth/register', { username: users[i].username, password: users[i].password })
          expectStatus('register', res, 201)
          users[i].id = res.json().id
        }, USERS)]
      },
      {
        kind: 'login',
        bursts: [one(async (i) => {
          const res = await http(base, 'POST', '/auth/login', { username: users[i].username, password: users[i].password })
          expectStatus('login', res, 200)
          const body = res.json()
          sessions.push({ access: body.access_token, refresh: body.refresh_token })
          tokens.push(body.access_token)
        }, USERS)]
      },
      {
        // 8 per session: 96, under the 120 refreshes a minute one client IP may send
        kind: 'refresh',
        bursts: [one(async (i) => {
          const s = sessions[i % USERS]
          const res = await http(base, 'POST', '/auth/refresh', { refresh_token: s.refresh })
          expectStatus('refresh', res, 200)
          const body = res.json()
          s.refresh = body.refresh_token
          s.access = body.access_token
          tokens.push(body.access_token)
        }, USERS * 8)]
      },
      {
        kind: 'GET /users/me',
        note: `${USERS} users' ${USERS * 9} tokens in turn: the profile is cached (1 s per process)`,
        warmup: async () => { for (let i = 0; i < 200; i++) await meOnce(i) },
        bursts: [one(meOnce, READS)]
      },
      {
        kind: 'GET /users/me, profile not cached',
        note: `one request per user, ${USERS} at a time, 1.1 s apart: every one misses the 1 s profile cache`,
        pauseMs: 1100,
        bursts: [0, 1, 2].map(() => one(async (i) => {
          expectStatus('GET /users/me', await http(base, 'GET', '/users/me', undefined, { authorization: `Bearer ${sessions[i].access}` }), 200)
        }, USERS))
      },
      {
        kind: 'POST /auth/introspect',
        warmup: async () => { for (let i = 0; i < 200; i++) await introspectOnce(i) },
        bursts: [one(introspectOnce, READS)]
      },
      {
        // each call revokes the token it checks and answers a new one: chained per session
        kind: 'compat POST /validate_token',
        bursts: [one(async (i) => {
          const s = sessions[i % USERS]
          const res = await http(base, 'POST', '/validate_token', { token: s.access })
          expectStatus('validate_token', res, 200)
          s.access = res.json().token
        }, USERS * 3)]
      },
      {
        kind: 'logout',
        bursts: [one(async (i) => {
          expectStatus('logout', await http(base, 'POST', '/auth/logout', undefined, { authorization: `Bearer ${sessions[i].access}` }), 204)
        }, USERS)]
      }
    ]

    const results: PhaseResult[] = []
    for (const phase of phases) {
      if (phase.warmup) await phase.warmup()
      await settle()
      await drainMonitor()
      const before = await snapshot()
      let n = 0
      let statMs = 0
      let cpuMs = 0
      let wallMs = 0
      let pgCpuMs = 0
      for (let b = 0; b < phase.bursts.length; b++) {
        // before the first burst too: the previous kind may have cached every profile
        if (phase.pauseMs) await sleep(phase.pauseMs)
        const p0 = schedMsOf(admin && pgName ? await pgBackends(admin, pgName) : [])
        const c0 = cpuNow(pid)
        n += await phase.bursts[b]()
        const c1 = cpuNow(pid)
        if (admin && pgName) pgCpuMs += spent(p0, schedMsOf(await pgBackends(admin, pgName)))
        statMs += c1.statMs - c0.statMs
        cpuMs += c1.schedMs - c0.schedMs
        wallMs += c1.at - c0.at
      }
      await settle()
      const after = await snapshot()
      // from our marker before the first snapshot to the one after the last
      const allEvents = await drainMonitor()
      const phaseEvents = allEvents.filter(notOurs)
      // what the process would have spent anyway over the measured time
      const backgroundMs = idle.cpu_ms_per_s_sched * wallMs / 1000
      const d = (a: number, b: number) => (a - b) / n
      const own = phaseEvents.filter((e) => !background(e))
      // INFO commandstats's count over the same window, less the heartbeats MONITOR saw between
      // the two INFO calls: it must equal what MONITOR attributes to the requests.
      let statsDelta: number | null = null
      if (before.redis && after.redis) {
        statsDelta = 0
        for (const [cmd, stat] of Object.entries(after.redis)) if (!OURS.has(cmd)) statsDelta += stat.calls - (before.redis[cmd]?.calls ?? 0)
        const infos = allEvents.flatMap((e, i) => e.args[0].toLowerCase() === 'info' ? [i] : [])
        const window = infos.length >= 2 ? allEvents.slice(infos[0], infos[infos.length - 1]) : allEvents
        statsDelta -= window.filter((e) => notOurs(e) && background(e)).length
      }
      // Redis's own time executing the requests' commands (INFO commandstats usec; a script's
      // time includes the commands it runs): the commands sent, less the heartbeats' share
      let redisUsec: number | null = null
      if (before.redis && after.redis) {
        redisUsec = 0
        const sent = new Set(own.filter((e) => e.source !== 'lua').map((e) => e.args[0].toLowerCase()))
        for (const cmd of sent) {
          const a = after.redis[cmd]
          const b = before.redis[cmd] ?? { calls: 0, usec: 0 }
          if (a === undefined || a.calls === b.calls) continue
          const perCall = (a.usec - b.usec) / (a.calls - b.calls)
          const mine = own.filter((e) => e.source !== 'lua' && e.args[0].toLowerCase() === cmd).length
          redisUsec += perCall * mine
        }
      }
      const bgDb = {
        statements: after.db.background.statements - before.db.background.statements,
        transactions: after.db.background.transactions - before.db.background.transactions,
        roundTrips: after.db.background.roundTrips - before.db.background.roundTrips
      }
      const byText: Record<string, number> = {}
      for (const [text, count] of Object.entries(after.db.byText)) {
        const delta = count - (before.db.byText[text] ?? 0)
        if (delta > 0) byText[text] = Number((delta / n).toFixed(3))
      }
      const r: PhaseResult = {
        kind: phase.kind,
        n,
        wall_ms_per_req: wallMs / n,
        cpu_ms_per_req_stat: statMs / n,
        cpu_ms_per_req_sched: cpuMs / n,
        cpu_ms_per_req_net: (cpuMs - backgroundMs) / n,
        cpu_background_ms: Number(backgroundMs.toFixed(2)),
        db_statements: d(after.db.statements - bgDb.statements, before.db.statements),
        db_transactions: d(after.db.transactions - bgDb.transactions, before.db.transactions),
        db_round_trips: DB === 'postgres' ? d(after.db.roundTrips - bgDb.roundTrips, before.db.roundTrips) : null,
        // the server's count, less the reconciliation's autocommit reads the driver saw
        pg_xacts: after.xacts !== null && before.xacts !== null ? d(after.xacts - bgDb.transactions - (after.db.connections - before.db.connections), before.xacts) : null,
        pg_connections_opened: DB === 'postgres' ? after.db.connections - before.db.connections : null,
        db_statements_by_text: byText,
        redis_sent: redis ? own.filter((e) => e.source !== 'lua').length / n : null,
        redis_run: redis ? own.length / n : null,
        redis_by_command: redis ? Object.fromEntries(Object.entries(countBy(own)).map(([k, v]) => [k, Number((v / n).toFixed(3))])) : null,
        redis_commandstats: statsDelta === null ? null : statsDelta / n,
        redis_background: redis ? phaseEvents.length - own.length : null,
        redis_usec: redisUsec === null ? null : redisUsec / n,
        pg_cpu_ms_per_req: pgName ? pgCpuMs / n : null,
        pg_cpu_ms_per_req_net: pgName ? (pgCpuMs - idle.pg_cpu_ms_per_s! * wallMs / 1000) / n : null,
        ...(phase.note ? { note: phase.note } : {})
      }
      results.push(r)
      log(`${phase.kind}: ${n} requests, ${r.cpu_ms_per_req_sched.toFixed(3)} CPU ms/req (${r.cpu_ms_per_req_net.toFixed(3)} net of idle), ${r.db_statements.toFixed(2)} statements, ${r.db_transactions.toFixed(2)} transactions` +
        (redis ? `, ${r.redis_sent!.toFixed(2)} Redis commands sent (${r.redis_run!.toFixed(2)} run; INFO commandstats: ${r.redis_commandstats!.toFixed(2)})` : ''))
    }

    const config = `${DB}+${REDIS ? 'redis' : 'memory'}`
    const run = {
      config,
      db: DB,
      store: REDIS ? 'redis' : 'memory',
      rate_limits: RATE_LIMITS,
      bcrypt_cost: BCRYPT_COST,
      cpus: cpus().length,
      node: process.version,
      started_at: new Date(Date.now() - (performance.now() - T0)).toISOString(),
      loadavg_start: load0,
      loadavg_end: loadavg().map((x) => Number(x.toFixed(2))),
      pg_stat_statements: pgStatStatements,
      ...(DB === 'postgres' ? { pg_stat_database_offset: offset, pg_stat_database_unsettled_snapshots: unsettled } : {}),
      idle,
      requests: results
    }
    mkdirSync(join(__dirname, '.tmp'), { recursive: true })
    let all: Record<string, unknown> = {}
    try { all = JSON.parse(readFileSync(OUT, 'utf8')) } catch {}
    all[config] = run
    writeFileSync(OUT, JSON.stringify(all, null, 2) + '\n')

    process.stdout.write('\n' + costTable(run) + '\n')
    process.stdout.write(`\nload average ${load0.join(' ')} at the start, ${run.loadavg_end.join(' ')} at the end (${run.cpus} cores); written to bench/.tmp/costs.json ("${config}")\n`)
  } finally {
    monitor?.disconnect()
    if (redis) {
      await redis.shutdown('NOSAVE').catch(() => {})
      redis.disconnect()
    }
    await stopAll()
    await dropDatabase?.()
    await admin?.end().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

function countBy (events: MonitorEvent[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const e of events) {
    const key = (e.source === 'lua' ? 'lua:' : '') + e.args[0].toLowerCase()
    out[key] = (out[key] ?? 0) + 1
  }
  return out
}

const num = (x: number | null, digits = 2) => x === null || Number.isNaN(x) ? '-' : x.toFixed(digits)

export function costTable (run: { config: string, idle: { cpu_ms_per_s_sched: number, redis_commands_per_s: number | null, pg_cpu_ms_per_s: number | null }, requests: PhaseResult[] }): string {
  const header = ['request', 'n', 'wall ms', 'CPU ms (stat)', 'CPU ms', 'net of idle', 'DB stmts', 'DB tx', 'pg round trips', 'pg xacts', 'pg CPU ms', 'Redis sent', 'Redis run', 'INFO check', 'Redis us', 'Redis commands (per request)']
  const lines = run.requests.map((r) => [
    r.kind,
    String(r.n),
    num(r.wall_ms_per_req, r.wall_ms_per_req < 10 ? 2 : 0),
    num(r.cpu_ms_per_req_stat, r.cpu_ms_per_req_stat < 10 ? 2 : 0),
    num(r.cpu_ms_per_req_sched, r.cpu_ms_per_req_sched < 10 ? 3 : 0),
    num(r.cpu_ms_per_req_net, Math.abs(r.cpu_ms_per_req_net) < 10 ? 3 : 0),
    num(r.db_statements),
    num(r.db_transactions),
    num(r.db_round_trips),
    num(r.pg_xacts),
    num(r.pg_cpu_ms_per_req_net, 3),
    num(r.redis_sent),
    num(r.redis_run),
    num(r.redis_commandstats),
    num(r.redis_usec, 1),
    r.redis_by_command ? Object.entries(r.redis_by_command).map(([k, v]) => `${k} ${v}`).join(', ') || '-' : '-'
  ])
  // columns that do not apply to this configuration (PostgreSQL's, Redis's) are left out
  const keep = header.map((_, i) => lines.some((l) => l[i] !== '-'))
  const pick = <T>(xs: T[]) => xs.filter((_, i) => keep[i])
  const cols = pick(header)
  const rows = lines.map(pick)
  const widths = cols.map((h, i) => Math.max(h.length, ...rows.map((l) => l[i].length)))
  const cell = (s: string, i: number) => i === 0 || i === cols.length - 1 ? s.padEnd(widths[i]) : s.padStart(widths[i])
  const out = [`${run.config}: per request, sent one at a time`, cols.map(cell).join('  ').trimEnd(), widths.map((w) => '-'.repeat(w)).join('  ')]
  for (const l of rows) out.push(l.map(cell).join('  ').trimEnd())
  out.push('CPU ms: the service process, schedstat of every thread; (stat): utime + stime in 10 ms ticks; net of idle: less the idle rate below over the same wall time')
  out.push('pg CPU ms: the PostgreSQL backends of the run\'s database, net of their idle rate; Redis us: Redis executing the commands sent (INFO commandstats usec)')
  out.push(`idle (no requests): ${run.idle.cpu_ms_per_s_sched} CPU ms/s (median of 8 windows of 0.5 s)` + (run.idle.redis_commands_per_s === null ? '' : `, ${run.idle.redis_commands_per_s} Redis commands/s (replica heartbeat)`) +
    (run.idle.pg_cpu_ms_per_s === null ? '' : `, PostgreSQL backends ${run.idle.pg_cpu_ms_per_s} CPU ms/s`))
  return out.join('\n')
}

let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (interrupted) process.exit(130)
    interrupted = true
    log(`${signal}: stopping`)
    stopAll().then(() => dropDatabase?.()).finally(() => process.exit(130))
  })
}

if (require.main === module) {
  main().catch(async (err) => {
    console.error(err instanceof Error ? err.stack ?? err.message : err)
    await stopAll()
    process.exitCode = 1
  })
}
