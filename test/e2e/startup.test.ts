import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, logLine, PASSWORD, REDIS_URL, redisPrefix, requireRedis, SERVER_ENTRY, startServer, testEnv, uniqueName, waitFor } from '../helper'

// Start-up as a person meets it: the built server (npm run build first), as its own process.

t.test('a busy port: one line that says which variable to change, no stack trace, exit 1', async (t) => {
  const port = await freePort()
  const squatter = createServer().listen(port, '127.0.0.1')
  await once(squatter, 'listening')
  t.teardown(() => { squatter.close() })
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    env: { PATH: process.env.PATH, ...testEnv({ LOG_LEVEL: 'info' }), PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  const [code] = await once(child, 'exit')
  t.equal(code, 1, 'exits 1')
  t.match(stderr, `Cannot listen on 127.0.0.1:${port}: the port is already in use`)
  t.match(stderr, /set PORT to a free port/, 'names the variable to change')
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
  t.notMatch(stderr, /EADDRINUSE/, 'no raw error code dump')
})

t.test('without JWT_SECRET the warning says what a restart costs, and it is true', async (t) => {
  const databaseUrl = `file:${join(mkdtempSync(join(tmpdir(), 'auth-secret-')), 'auth.db')}`
  const env = { JWT_SECRET: '', DATABASE_URL: databaseUrl }
  const first = await startServer(t, env)
  const warning = await logLine(first, (l) => l.level === 40 && String(l.msg).includes('JWT_SECRET'))
  t.match(warning.msg, 'JWT_SECRET is not set')
  t.match(warning.msg, 'Access tokens will stop working when it restarts')
  t.match(warning.msg, 'refresh tokens keep working')

  const username = uniqueName()
  const post = async (base: string, path: string, body: unknown) => await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  t.equal((await post(first.url, '/auth/register', { username, password: PASSWORD })).status, 201)
  const pair = await (await post(first.url, '/auth/login', { username, password: PASSWORD })).json() as { access_token: string, refresh_token: string }
  t.equal((await fetch(`${first.url}/users/me`, { headers: { authorization: `Bearer ${pair.access_token}` } })).status, 200)
  t.equal(await first.stop(), 0)

  const second = await startServer(t, env)
  const me = await fetch(`${second.url}/users/me`, { headers: { authorization: `Bearer ${pair.access_token}` } })
  t.equal(me.status, 401, 'the access token died with the key')
  const refreshed = await post(second.url, '/auth/refresh', { refresh_token: pair.refresh_token })
  t.equal(refreshed.status, 200, 'the refresh token survived the restart')
  const next = await refreshed.json() as { access_token: string }
  t.equal((await fetch(`${second.url}/users/me`, { headers: { authorization: `Bearer ${next.access_token}` } })).status, 200,
    'and its new access token works')
})

/** The server with its stdout on a terminal (util-linux `script` gives it a pseudo-terminal); BCRYPT_COST at the floor, as NODE_ENV is not test here. */
async function onTerminal (t: Test, env: Record<string, string>) {
  const port = await freePort()
  const child = spawn('script', ['-qfec', `${process.execPath} ${SERVER_ENTRY}`, '/dev/null'], {
    env: { PATH: process.env.PATH, ...testEnv({ LOG_LEVEL: 'info', BCRYPT_COST: '10' }), PORT: String(port), HOST: '127.0.0.1', ...env } as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} })
  await waitFor(async () => out.includes('Server listening'), 90_000) // a bound only: one start took 17 s under load
  return out
}

t.test('logs are readable on a terminal in development, JSON lines elsewhere', async (t) => {
  const dev = await onTerminal(t, { NODE_ENV: 'development', JWT_SECRET: '' })
  t.match(dev, /WARN.*JWT_SECRET is not set/, 'the random-secret warning stands out as WARN')
  t.notMatch(dev, /"level":\s*\d+/, 'no JSON on the terminal')

  const prod = await onTerminal(t, { NODE_ENV: 'production' })
  t.match(prod, /\{"level":30,.*"msg":"Server listening/, 'production logs JSON even on a terminal')

  const piped = await startServer(t, { NODE_ENV: 'development', BCRYPT_COST: '10' }) // below 10 is for NODE_ENV=test alone
  t.match(await logLine(piped, (l) => String(l.msg).startsWith('Server listening')), { level: 30 }, 'a pipe gets JSON in development too')
})

t.test('the start log names the database kind, the revocation store and the algorithm, never a URL', async (t) => {
  // Waited for: /health can be read before the pipe delivers the line written just before it.
  const started = (server: { output: () => string }) => logLine(server, (l) => l.event === 'service.started')
  const embedded = await startServer(t, {})
  t.match(await started(embedded), { database: 'sqlite', revocationStore: 'memory', alg: 'HS256', msg: 'auth-service started: database sqlite, revocation store memory, tokens HS256' })

  await requireRedis(t)
  const shared = await startServer(t, { REDIS_URL, REDIS_PREFIX: redisPrefix() })
  t.match(await started(shared), { database: 'sqlite', revocationStore: 'redis', alg: 'HS256' })
  t.notMatch(shared.output(), /redis:\/\//, 'the Redis URL is not logged')
})
