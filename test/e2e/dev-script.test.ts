import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { freePort, TEST_SECRET, waitFor } from '../helper'

// `npm run dev` (scripts/dev.js): rate limits off by default, said loudly, so that trying
// things out on localhost never locks the developer out; RATE_LIMITS=on (here from .env,
// the harder path) keeps them, silently.
const DEV = join(__dirname, '..', '..', 'scripts', 'dev.js')

async function startDev (t: Test, dotEnv?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'auth-dev-'))
  if (dotEnv !== undefined) writeFileSync(join(dir, '.env'), dotEnv)
  const port = await freePort()
  // Its own process group (tsx watch starts children), killed as a whole at the end.
  const child = spawn(process.execPath, [DEV], {
    cwd: dir,
    detached: true,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: `file:${join(dir, 'auth.db')}`,
      BCRYPT_COST: '10',
      JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: 'warn'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGKILL')
      await once(child, 'exit')
    }
    rmSync(dir, { recursive: true, force: true })
  })
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`npm run dev exited: ${out}`)
    try { return (await fetch(`${url}/health`)).status === 200 } catch { return false }
  }, 30_000)
  return { url, output: () => out }
}

/**
 * `n` failed logins, one after the other, from this one IP, each for another unknown username
 * (so that the address's limit is the one reached, not the account+address pair's); their statuses.
 */
async function failedLogins (url: string, n: number): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: `nobody_here_${i}`, password: `wrong password ${i}` })
    })
    statuses.push(res.status)
  }
  return statuses
}

t.test('npm run dev: no rate limits by default, with a loud warning', async (t) => {
  const dev = await startDev(t)
  t.match(dev.output(), /!!\s+npm run dev: RATE_LIMITS=off: failed logins, registrations and refreshes are NOT limited/, 'the warning is printed')
  const statuses = await failedLogins(dev.url, 55)
  t.same([...new Set(statuses)], [401], '55 failed logins from one IP: every one a 401, never a 429')
})

t.test('npm run dev with RATE_LIMITS=on in .env: limits on, no warning', async (t) => {
  const dev = await startDev(t, 'RATE_LIMITS=on\n')
  t.notMatch(dev.output(), /RATE_LIMITS=off/, 'no warning')
  const statuses = await failedLogins(dev.url, 52)
  t.same(statuses.slice(0, 50), Array(50).fill(401), 'the first 50 failures are 401s')
  t.same(statuses.slice(50), [429, 429], 'then the address is refused: 429')
})
