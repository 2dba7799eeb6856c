/**
 * What accounts features add to a login (issue 18), as sequential latency per login (one
 * request in flight, so each figure is one login's own cost, not a queue), windows
 * alternated in one run so that drift on a shared machine falls on both sides alike; each
 * ratio is of the medians of the windows' mean latencies. Run alone (after `npm run build`):
 *
 *   npx tsx bench/accounts.ts [--quick]
 *
 * - totp: a user with TOTP on (POST /auth/login -> 202 mfa_token, then POST /auth/login/mfa
 *   with a fresh code) against a plain login (POST /auth/login -> 200), same cost. A code is
 *   accepted once per 30 s step per user, so the TOTP users (all enrolled beforehand) are
 *   rotated, and a user whose step is spent waits for the next one (time not counted).
 * - rehash: users registered by a service at BCRYPT_COST=10, then logged in to a service at
 *   BCRYPT_COST=12 on the same database: a user's first login verifies at 10 and hashes again
 *   at 12 in that request; a later login of a rehashed user is a normal cost-12 login.
 *
 * `npm run bench` runs it too (bench/run.ts) and lists both ratios among its targets.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import { sleep, startChild, stopAll, freePort, type Child } from './lib/procs'
import { http } from './lib/http'
import { timeStep, totpCode } from '../src/security/totp'

const ROOT = join(__dirname, '..')
const SERVER_ENTRY = join(ROOT, 'dist', 'src', 'server.js')
const START_FLAGS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string)
  .split(/\s+/).filter((arg) => arg.startsWith('--'))
const PASSWORD = 'correct horse battery staple'
const LOW_COST = 10
const COST = 12

export interface Comparison {
  /** mean latency (ms) of each window, in the order measured */
  base_ms: number[]
  case_ms: number[]
  base_logins: number
  case_logins: number
  /** median case window / median base window */
  ratio: number
}

export interface AccountsBench {
  bcrypt_cost: number
  /** TOTP login (both steps) vs plain login */
  totp: Comparison
  /** first login after the cost rise (rehash) vs a later login of the same users */
  rehash: Comparison & { rehashed_in_db: number }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const round2 = (x: number) => Number(x.toFixed(2))

async function startService (dbFile: string, cost: number, mfaKey: string): Promise<{ child: Child, url: string }> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = startChild(`server(accounts, cost ${cost})`, process.execPath, [...START_FLAGS, SERVER_ENTRY], {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: `file:${dbFile}`,
    JWT_SECRET: randomBytes(48).toString('base64url'),
    MFA_ENCRYPTION_KEY: mfaKey,
    BCRYPT_COST: String(cost),
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn'
  })
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exited()) throw new Error(`the service exited at start:\n${child.output()}`)
    try {
      if ((await http(url, 'GET', '/health')).status === 200) return { child, url }
    } catch {}
    if (Date.now() > deadline) throw new Error(`the service did not start:\n${child.output()}`)
    await sleep(50)
  }
}

async function expect (what: string, p: ReturnType<typeof http>, status: number) {
  const res = await p
  if (res.status !== status) throw new Error(`${what}: ${res.status} (expected ${status}) ${res.text.slice(0, 200)}`)
  return res
}

/** A set-up call, again after a 503 (the service sheds bcrypt work when its queue is full on a busy machine). */
async function setup (what: string, call: () => ReturnType<typeof http>, status: number) {
  for (let attempt = 1; ; attempt++) {
    const res = await call()
    if (res.status !== 503 || attempt === 50) return await expect(what, Promise.resolve(res), status)
    await sleep(200)
  }
}

/** Runs `n` at a time over `items`: set-up only (bcrypt-bound, so the pool's threads stay busy). */
async function each<T> (items: T[], n: number, fn: (item: T) => Promise<void>) {
  let next = 0
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++])
  }))
}

/**
 * One window: logins one after the other until `seconds` of login time (waits for a TOTP step
 * excluded), and their mean latency. `one` returns null when no user is left (ends the window).
 */
async function window (seconds: number, one: () => Promise<number | null>): Promise<{ mean: number, n: number }> {
  let total = 0
  let n = 0
  while (total < seconds * 1000) {
    const ms = await one()
    if (ms === null) break
    total += ms
    n++
  }
  if (n === 0) throw new Error('a window with no login')
  return { mean: total / n, n }
}

async function timed (fn: () => Promise<void>): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

export async function accountsBench (opts: { quick?: boolean, log?: (msg: string) => void } = {}): Promise<AccountsBench> {
  const log = opts.log ?? ((msg: string) => { process.stderr.write(`[accounts] ${msg}\n`) })
  const seconds = opts.quick === true ? 2 : 3
  const rounds = opts.quick === true ? 2 : 3
  const totpUsers = opts.quick === true ? 12 : 24
  const rehashUsers = opts.quick === true ? 16 : 40
  const dir = mkdtempSync(join(tmpdir(), 'auth-bench-accounts-'))
  const dbFile = join(dir, 'auth.db')
  const mfaKey = randomBytes(32).toString('base64')
  const tag = randomBytes(3).toString('hex')
  let service: { child: Child, url: string } | null = null
  try {
    // Users with cost-10 hashes, written by a service at BCRYPT_COST=10.
    service = await startService(dbFile, LOW_COST, mfaKey)
    const low = Array.from({ length: rehashUsers }, (_, i) => `rh_${tag}_${i}`)
    const url10 = service.url
    await each(low, 4, async (username) => { await setup('register', async () => await http(url10, 'POST', '/auth/register', { username, password: PASSWORD }), 201) })
    await service.child.stop()

    service = await startService(dbFile, COST, mfaKey)
    const { url } = service
    const plain = Array.from({ length: 4 }, (_, i) => `plain_${tag}_${i}`)
    const withTotp = Array.from({ length: totpUsers }, (_, i) => `totp_${tag}_${i}`)
    const secrets = new Map<string, string>()
    const lastStep = new Map<string, number>()
    log(`enrolling ${totpUsers} TOTP users at cost ${COST}`)
    await each([...plain, ...withTotp], 4, async (username) => {
      await setup('register', async () => await http(url, 'POST', '/auth/register', { username, password: PASSWORD }), 201)
      if (!username.startsWith('totp_')) return
      const token = (await setup('login', async () => await http(url, 'POST', '/auth/login', { username, password: PASSWORD }), 200))
        .json().access_token as string
      const auth = { authorization: `Bearer ${token}` }
      const secret = (await setup('enrol', async () => await http(url, 'POST', '/users/me/mfa/totp', { current_password: PASSWORD }, auth), 200))
        .json().secret as string
      await expect('confirm', http(url, 'POST', '/users/me/mfa/totp/confirm', { code: totpCode(secret) }, auth), 200)
      secrets.set(username, secret)
      lastStep.set(username, timeStep(Date.now()))
    })

    let p = 0
    const plainLogin = async () => {
      const username = plain[p++ % plain.length]
      return await timed(async () => { await expect('plain login', http(url, 'POST', '/auth/login', { username, password: PASSWORD }), 200) })
    }
    let t = 0
    const totpLogin = async () => {
      // The next user whose last accepted code is from an earlier step; wait (untimed) if none.
      for (;;) {
        const step = timeStep(Date.now())
        for (let k = 0; k < withTotp.length; k++) {
          const username = withTotp[(t + k) % withTotp.length]
          if ((lastStep.get(username) ?? -1) >= step) continue
          t += k + 1
          const secret = secrets.get(username) as string
          const ms = await timed(async () => {
            const mfaToken = (await expect('login', http(url, 'POST', '/auth/login', { username, password: PASSWORD }), 202)).json().mfa_token as string
            await expect('login/mfa', http(url, 'POST', '/auth/login/mfa', { mfa_token: mfaToken, code: totpCode(secret) }), 200)
          })
          lastStep.set(username, timeStep(Date.now()))
          return ms
        }
        await sleep(30_000 - (Date.now() % 30_000) + 50)
      }
    }
    const totp: Comparison = { base_ms: [], case_ms: [], base_logins: 0, case_logins: 0, ratio: 0 }
    for (let r = 0; r < rounds; r++) {
      const a = await window(seconds, plainLogin)
      const b = await window(seconds, totpLogin)
      totp.base_ms.push(round2(a.mean))
      totp.case_ms.push(round2(b.mean))
      totp.base_logins += a.n
      totp.case_logins += b.n
      log(`plain ${a.mean.toFixed(1)} ms (${a.n} logins), TOTP ${b.mean.toFixed(1)} ms (${b.n} logins)`)
    }
    totp.ratio = Number((median(totp.case_ms) / median(totp.base_ms)).toFixed(3))

    // Each first login uses up a cost-10 user; the later-login windows cycle over those done.
    const done: string[] = []
    let fresh = 0
    let again = 0
    const firstLogin = async () => {
      if (fresh >= low.length) return null
      const username = low[fresh++]
      const ms = await timed(async () => { await expect('first login', http(url, 'POST', '/auth/login', { username, password: PASSWORD }), 200) })
      done.push(username)
      return ms
    }
    const laterLogin = async () => {
      const username = done[again++ % done.length]
      return await timed(async () => { await expect('later login', http(url, 'POST', '/auth/login', { username, password: PASSWORD }), 200) })
    }
    const rehash: Comparison = { base_ms: [], case_ms: [], base_logins: 0, case_logins: 0, ratio: 0 }
    for (let r = 0; r < rounds && fresh < low.length; r++) {
      const a = await window(seconds, firstLogin)
      const b = await window(seconds, laterLogin)
      rehash.case_ms.push(round2(a.mean))
      rehash.base_ms.push(round2(b.mean))
      rehash.case_logins += a.n
      rehash.base_logins += b.n
      log(`first login after the rise ${a.mean.toFixed(1)} ms (${a.n}), later login ${b.mean.toFixed(1)} ms (${b.n})`)
    }
    rehash.ratio = Number((median(rehash.case_ms) / median(rehash.base_ms)).toFixed(3))
    await service.child.stop()
    service = null

    // The first logins did rehash: those users' stored hashes now carry cost 12.
    const db = new Database(dbFile, { readonly: true })
    const hashes = db.prepare('SELECT username, password_hash AS h FROM users').all() as Array<{ username: string, h: string }>
    db.close()
    const costOf = new Map(hashes.map((u) => [u.username, u.h.split('$')[2]]))
    const rehashed = done.filter((u) => costOf.get(u) === String(COST)).length
    if (rehashed !== done.length) throw new Error(`only ${rehashed} of ${done.length} first logins rehashed`)
    if (low.slice(done.length).some((u) => costOf.get(u) !== String(LOW_COST))) throw new Error('a user not logged in was rehashed')
    return { bcrypt_cost: COST, totp, rehash: { ...rehash, rehashed_in_db: rehashed } }
  } finally {
    if (service !== null) await service.child.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Two lines for a report. */
export function accountsSummary (r: AccountsBench): { totp: string, rehash: string } {
  const ms = (xs: number[]) => median(xs).toFixed(1)
  return {
    totp: `TOTP login (both steps) vs plain login, cost ${r.bcrypt_cost}, sequential: ratio ${r.totp.ratio.toFixed(3)} ` +
      `(median ${ms(r.totp.case_ms)} vs ${ms(r.totp.base_ms)} ms per login; ${r.totp.case_logins} vs ${r.totp.base_logins} logins)`,
    rehash: `first login after BCRYPT_COST ${LOW_COST} -> ${r.bcrypt_cost} (rehash) vs a later login: ratio ${r.rehash.ratio.toFixed(3)} ` +
      `(median ${ms(r.rehash.case_ms)} vs ${ms(r.rehash.base_ms)} ms per login; ${r.rehash.case_logins} vs ${r.rehash.base_logins} logins, ` +
      `${r.rehash.rehashed_in_db} hashes at cost ${r.bcrypt_cost} in the database after)`
  }
}

if (require.main === module) {
  accountsBench({ quick: process.argv.includes('--quick') }).then((r) => {
    const s = accountsSummary(r)
    process.stdout.write(JSON.stringify(r, null, 2) + '\n')
    process.stdout.write(`${s.totp}\n${s.rehash}\n`)
  }).catch(async (err) => {
    console.error(err instanceof Error ? err.stack ?? err.message : err)
    await stopAll()
    process.exit(1)
  })
}
