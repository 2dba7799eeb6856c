/**
 * The revocation feed's cost to the service: protected reads (GET /users/me, the `me`
 * scenario) with no feed stream open and with 100 open, alternated in one run (0, 100, 0,
 * 100, 0, 100) so that drift on a shared machine falls on both alike; the ratio is of the
 * medians. Run alone (after `npm run build`):
 *
 *   npx tsx bench/feed.ts [--quick]
 *
 * `npm run bench` runs it too (bench/run.ts) and lists the ratio among its targets. The
 * service runs as `npm start` runs it, on SQLite and the memory store, with the feed on;
 * the streams are read (and thrown away) by this process, heartbeats included.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request, type ClientRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, sleep, startChild, stopAll } from './lib/procs'
import { http } from './lib/http'
import { load, type LoadResult } from './lib/load'

const ROOT = join(__dirname, '..')
const SERVER_ENTRY = join(ROOT, 'dist', 'src', 'server.js')
const START_FLAGS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string)
  .split(/\s+/).filter((arg) => arg.startsWith('--'))
const STREAMS = 100

export interface FeedBench {
  streams: number
  /** requests per second of each window, in the order measured */
  without: number[]
  with: number[]
  p99_without_ms: number
  p99_with_ms: number
  /** median with / median without */
  ratio: number
  /** the service's CPU time per request (median of the windows), less shaken by other processes than req/s */
  cpu_ms_per_req_without: number | null
  cpu_ms_per_req_with: number | null
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const cpuMedian = (rs: LoadResult[]) => {
  const xs = rs.map((r) => r.cpu_ms_per_req).filter((x): x is number => x !== null)
  return xs.length === 0 ? null : Number(median(xs).toFixed(4))
}

/** Opens `n` feed streams and reads them until closed; resolves once each has had its snapshot. */
async function openStreams (url: string, token: string, n: number): Promise<ClientRequest[]> {
  return await Promise.all(Array.from({ length: n }, async () => await new Promise<ClientRequest>((resolve, reject) => {
    const req = request(`${url}/revocations/stream`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` }, agent: false
    }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream: ${res.statusCode}`))
        return
      }
      let seen = ''
      const onData = (chunk: Buffer) => {
        seen += chunk.toString()
        if (seen.includes('event: snapshot')) {
          res.off('data', onData)
          res.resume() // read and drop everything from now on
          resolve(req)
        }
      }
      res.on('data', onData)
    })
    req.on('error', reject)
    req.end()
  })))
}

export async function feedBench (opts: { quick?: boolean, log?: (msg: string) => void } = {}): Promise<FeedBench> {
  const log = opts.log ?? ((msg: string) => { process.stderr.write(`[feed] ${msg}\n`) })
  const window = opts.quick === true ? { warmup: 0.5, duration: 2 } : { warmup: 1, duration: 4 }
  const rounds = opts.quick === true ? 2 : 5
  const dir = mkdtempSync(join(tmpdir(), 'auth-bench-feed-'))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const feedToken = randomBytes(32).toString('base64url')
  const child = startChild('server(feed)', process.execPath, [...START_FLAGS, SERVER_ENTRY], {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: `file:${join(dir, 'auth.db')}`,
    JWT_SECRET: randomBytes(48).toString('base64url'),
    MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64'), // required in production while enrolment is on
    BCRYPT_COST: '10',
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn',
    REVOCATION_FEED_TOKEN: feedToken
  })
  try {
    const deadline = Date.now() + 30_000
    for (;;) {
      if (child.exited()) throw new Error(`the service exited at start:\n${child.output()}`)
      try {
        if ((await http(url, 'GET', '/health')).status === 200) break
      } catch {}
      if (Date.now() > deadline) throw new Error(`the service did not start:\n${child.output()}`)
      await sleep(50)
    }
    const username = `feed_${randomBytes(4).toString('hex')}`
    const password = 'correct horse battery staple'
    if ((await http(url, 'POST', '/auth/register', { username, password })).status !== 201) throw new Error('register failed')
    // A log that is not empty: the snapshot each stream starts with has something in it.
    for (let i = 0; i < 20; i++) {
      const t = (await http(url, 'POST', '/auth/login', { username, password })).json().access_token as string
      await http(url, 'POST', '/auth/logout', undefined, { authorization: `Bearer ${t}` })
    }
    const tokens = await Promise.all(Array.from({ length: 8 }, async () =>
      (await http(url, 'POST', '/auth/login', { username, password })).json().access_token as string))
    const measure = async (): Promise<LoadResult> => await load({
      url,
      connections: 16,
      ...window,
      requests: (c) => [{ method: 'GET', path: '/users/me', headers: { authorization: `Bearer ${tokens[c % tokens.length]}` } }],
      cpuPids: () => [child.pid]
    })
    const without: LoadResult[] = []
    const withStreams: LoadResult[] = []
    for (let round = 0; round < rounds; round++) {
      const a = await measure()
      without.push(a)
      log(`0 streams: ${a.rps.toFixed(0)} req/s, p99 ${a.p99_ms.toFixed(2)} ms, ${a.cpu_ms_per_req?.toFixed(3) ?? '-'} CPU ms/req`)
      const streams = await openStreams(url, feedToken, STREAMS)
      const b = await measure()
      withStreams.push(b)
      log(`${STREAMS} streams: ${b.rps.toFixed(0)} req/s, p99 ${b.p99_ms.toFixed(2)} ms, ${b.cpu_ms_per_req?.toFixed(3) ?? '-'} CPU ms/req`)
      for (const s of streams) s.destroy()
      for (const r of [a, b]) if (r.unexpected > 0 || r.errors > 0) throw new Error(`unexpected answers: ${JSON.stringify(r.statuses)} ${r.error_messages.join('; ')}`)
    }
    const result: FeedBench = {
      streams: STREAMS,
      without: without.map((r) => Number(r.rps.toFixed(1))),
      with: withStreams.map((r) => Number(r.rps.toFixed(1))),
      p99_without_ms: Number(median(without.map((r) => r.p99_ms)).toFixed(3)),
      p99_with_ms: Number(median(withStreams.map((r) => r.p99_ms)).toFixed(3)),
      ratio: Number((median(withStreams.map((r) => r.rps)) / median(without.map((r) => r.rps))).toFixed(3)),
      cpu_ms_per_req_without: cpuMedian(without),
      cpu_ms_per_req_with: cpuMedian(withStreams)
    }
    return result
  } finally {
    await child.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One line for a report. */
export function feedSummary (r: FeedBench): string {
  return `me with ${r.streams} open feed streams vs none: ratio ${r.ratio.toFixed(3)} (median req/s ${median(r.with)} vs ` +
    `${median(r.without)}; p99 ${r.p99_with_ms} vs ${r.p99_without_ms} ms; CPU ${r.cpu_ms_per_req_with ?? '-'} vs ` +
    `${r.cpu_ms_per_req_without ?? '-'} ms/req)`
}

if (require.main === module) {
  feedBench({ quick: process.argv.includes('--quick') }).then((r) => {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n')
    process.stdout.write(`${feedSummary(r)}\n`)
  }).catch(async (err) => {
    console.error(err instanceof Error ? err.stack ?? err.message : err)
    await stopAll()
    process.exit(1)
  })
}
