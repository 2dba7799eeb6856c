import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { loggerOptions } from '../../src/logger'
import { build, newUser, ownRedis, PASSWORD, redisPrefix, waitFor } from '../helper'

// Issue 15, finding 8: during an outage every 503 logged a whole stack trace. A 503 is an
// answer the service chose: one warning line per request, naming what is down, no stack.

interface Line { level: number, msg: string, clientRequestId?: string, err?: unknown, cause?: string, statusCode?: number }

/** The app on a real logger whose lines the test reads (JSON, as production writes them). */
async function withLogs (t: Test, env: Record<string, string>) {
  const lines: Line[] = []
  const raw: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { raw.push(String(chunk)); lines.push(JSON.parse(String(chunk)) as Line); cb() } })
  const app = await build(t, { LOG_LEVEL: 'info', ...env }, { logger: { ...(loggerOptions('info') as object), stream } })
  let n = 0
  /** A request under an id of its own, and the log lines it left (those above info level). */
  const request = async (opts: { method?: 'GET' | 'POST', url: string, headers?: Record<string, string>, payload?: object }) => {
    const id = `outage-log-${++n}`
    const res = await app.inject({ ...opts, headers: { ...opts.headers, 'x-request-id': id } })
    const mine = () => lines.filter((l) => l.clientRequestId === id)
    const rawMine = () => raw.filter((l) => l.includes(`"clientRequestId":"${id}"`))
    return { res, logged: () => mine().filter((l) => l.level > 30), rawLines: rawMine }
  }
  return { app, request }
}

/** The one log line of a 503: a warning naming `what` (and the cause), without stack or error object. */
function oneLineWithoutStack (t: Test, got: Awaited<ReturnType<Awaited<ReturnType<typeof withLogs>>['request']>>, what: string) {
  t.equal(got.res.statusCode, 503)
  const logged = got.logged()
  t.equal(logged.length, 1, `one line above info: ${JSON.stringify(logged)}`)
  t.equal(logged[0]?.level, 40, 'a warning, not an error with a stack')
  t.match(logged[0]?.msg, new RegExp(`^${what}`), 'its message names what is unavailable')
  t.equal(logged[0]?.statusCode, 503)
  t.notOk('err' in (logged[0] ?? {}), 'no error object')
  for (const line of got.rawLines()) t.notMatch(line, /"stack"|\n\s+at /, 'no stack in any of its lines')
}

t.test('revocation store down (a real Redis, stopped): each 503 logs one line, no stack', async (t) => {
  const redis = await ownRedis(t)
  const { app, request } = await withLogs(t, { REDIS_URL: redis.url, REDIS_PREFIX: redisPrefix() })
  const u = await newUser(app)
  await redis.stop()
  // The replica answers until the outage is noticed: wait for the first 503.
  await waitFor(async () => (await app.inject({ url: '/users/me', headers: u.auth })).statusCode === 503, 10_000)

  oneLineWithoutStack(t, await request({ url: '/users/me', headers: u.auth }), 'Revocation store unavailable')
  oneLineWithoutStack(t, await request({ method: 'POST', url: '/auth/logout', headers: u.auth }), 'Revocation store unavailable')
  oneLineWithoutStack(t, await request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } }), 'Revocation store unavailable')
})

t.test('database down: each 503 logs one line naming the driver\'s reason, no stack (service and compat routes)', async (t) => {
  const { app, request } = await withLogs(t, {})
  const u = await newUser(app)
  await app.db.close()

  const login = await request({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })
  oneLineWithoutStack(t, login, 'Database unavailable')
  t.match(login.logged()[0]?.cause, /not open|pool/i, 'the driver\'s reason, in the line')
  t.notMatch(JSON.stringify(login.rawLines()), PASSWORD, 'no password in the line')
  oneLineWithoutStack(t, await request({ url: '/users/me', headers: u.auth }), 'Database unavailable')
  // The seed-compatible routes have an error handler of their own.
  oneLineWithoutStack(t, await request({ method: 'POST', url: '/login', payload: { username: u.username, password: PASSWORD } }), 'Database unavailable')
})
