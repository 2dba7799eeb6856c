/**
 * Where the service spends its CPU on one scenario: starts the built service with
 * --cpu-prof (production settings, as the bench does), seeds a few users, drives one
 * scenario with autocannon, stops the service gracefully and ranks self time.
 *
 *   npx tsx bench/profile.ts me|reject|introspect|refresh|protected [--redis] [--seconds 8]
 *
 * BENCH_SERVER_ENTRY=/scratch/copy/dist/src/server.js profiles a patched copy instead (A/B).
 *
 * Profiles stay in bench/.tmp/profiles (git-ignored).
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, sleep, startChild, stopAll } from './lib/procs'
import { load, rotate, type Req } from './lib/load'
import { badTokens } from './lib/tokens'
import { summarise } from './lib/cpuprofile'

const ROOT = join(__dirname, '..')
const scenario = process.argv[2] ?? 'me'
const redis = process.argv.includes('--redis')
const secondsArg = process.argv.indexOf('--seconds')
const seconds = secondsArg === -1 ? 8 : Number(process.argv[secondsArg + 1])
const secret = randomBytes(48).toString('base64url')

async function post (url: string, path: string, body: unknown) {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, json: await res.json() as Record<string, string> }
}

async function main () {
  const profDir = join(__dirname, '.tmp', 'profiles', `${scenario}-${Date.now()}`)
  mkdirSync(profDir, { recursive: true })
  const dir = mkdtempSync(join(tmpdir(), 'auth-profile-'))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const server = startChild('server', process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, process.env.BENCH_SERVER_ENTRY ?? join(ROOT, 'dist', 'src', 'server.js')], {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    PORT: String(port),
    DATABASE_URL: `file:${join(dir, 'auth.db')}`,
    JWT_SECRET: secret,
    MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64'), // required in production while enrolment is on
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn',
    ...(redis ? { REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', REDIS_PREFIX: `bench:profile:${randomBytes(3).toString('hex')}:` } : {})
  })
  try {
    for (let i = 0; ; i++) {
      try { if ((await fetch(`${url}/health`)).status === 200) break } catch {}
      if (i > 400 || server.exited()) throw new Error(`server did not start: ${server.output()}`)
      await sleep(50)
    }
    const access: string[] = []
    const refresh: string[] = []
    const ids: string[] = []
    await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const cred = { username: `p${randomBytes(3).toString('hex')}_${i}`, password: `bench-password-${randomBytes(6).toString('hex')}` }
      ids.push((await post(url, '/auth/register', cred)).json.id)
      let pair = (await post(url, '/auth/login', cred)).json
      for (let k = 0; k < 16; k++) {
        access.push(pair.access_token)
        pair = (await post(url, '/auth/refresh', { refresh_token: pair.refresh_token })).json
      }
      refresh.push(pair.refresh_token)
    }))
    const conns = 32
    const get = (path: string, tokens: string[]) => (c: number): Req[] => rotate(tokens, c, conns).map((t) => ({ method: 'GET', path, headers: { authorization: `Bearer ${t}` } }))
    let requests: (c: number) => Req[]
    let connections = conns
    let expect: ((s: number) => boolean) | undefined
    if (scenario === 'me' || scenario === 'protected') requests = get(scenario === 'me' ? '/users/me' : '/protected', access)
    else if (scenario === 'reject') {
      requests = get('/users/me', badTokens({ secret, issuer: 'auth-service', audience: 'auth-service', accessTokens: access, userIds: ids, refreshTokens: refresh, count: 400 }))
      expect = (s) => s === 401
    } else if (scenario === 'introspect') {
      requests = (c) => rotate(access, c, conns).map((t) => ({ method: 'POST', path: '/auth/introspect', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t }) }))
    } else if (scenario === 'refresh') {
      connections = refresh.length
      requests = (c) => {
        let token = refresh[c]
        return [{
          method: 'POST',
          path: '/auth/refresh',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ refresh_token: token }) }),
          onResponse: (status, body) => { if (status === 200) token = (JSON.parse(body) as { refresh_token: string }).refresh_token }
        }]
      }
    } else throw new Error(`unknown scenario ${scenario}`)
    const r = await load({ url, connections, warmup: 1, duration: seconds, requests, expect })
    console.log(`${scenario}${redis ? ' (redis)' : ''}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99_ms.toFixed(1)} ms, statuses ${JSON.stringify(r.statuses)}, errors ${r.errors}`)
  } finally {
    await server.stop(10_000)
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error(`no profile written in ${profDir}`)
  const s = summarise(join(profDir, file), ROOT)
  console.log(`profile ${join(profDir, file)}: ${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s`)
  console.log('\nself time by package:')
  for (const p of s.packages.slice(0, 15)) console.log(`  ${(p.share * 100).toFixed(1).padStart(5)}%  ${p.name}`)
  console.log('\ntop functions by self time:')
  for (const f of s.functions) console.log(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`)
}

main().catch(async (err) => {
  console.error(err)
  await stopAll()
  process.exit(1)
})
