import t from 'tap'
import { bearer, build, login, newUser, PASSWORD, register, TEST_SECRET, type App } from '../helper'
import { claims, forge, GOOD_HEADER } from '../jwt-forge'
import { parseMetrics } from '../support/prometheus'
import { LIMITS } from '../../plugins/app/rate-limits'

const METRICS_TOKEN = 'a-metrics-token-for-tests-only'

async function scrape (app: App) {
  const res = await app.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) })
  if (res.statusCode !== 200) throw new Error(`scrape failed: ${res.statusCode}`)
  return parseMetrics(res.body)
}

t.test('GET /metrics needs the METRICS_TOKEN, and does not exist without one', async (t) => {
  const app = await build(t, { METRICS_TOKEN })
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 401, 'no token')
  const wrong = await app.inject({ url: '/metrics', headers: bearer('a-metrics-token-for-tests-onlx') })
  t.equal(wrong.statusCode, 401, 'a token that differs in its last character')
  t.same(Object.keys(wrong.json()).sort(), ['error', 'message', 'statusCode'])
  const ok = await app.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) })
  t.equal(ok.statusCode, 200)
  t.match(ok.headers['content-type'], /^text\/plain/)
  t.ok(parseMetrics(ok.body).has('process_cpu_seconds_total'), 'process metrics are there')
  const docs = (await app.inject({ url: '/docs/json' })).json()
  t.notOk('/metrics' in docs.paths, 'not in the public API document')

  const without = await build(t)
  t.equal((await without.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) })).statusCode, 404, 'off unless METRICS_TOKEN is set')
})

t.test('GET /metrics answers 503 in the error shape when the metrics cannot be gathered (a worker too busy, WORKERS > 1)', async (t) => {
  const app = await build(t, { METRICS_TOKEN })
  // the decorator the route reads: with WORKERS > 1 it asks the primary, which can time out
  app.metricsText = async () => { throw new Error('Operation timed out.') }
  const res = await app.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.same(Object.keys(res.json()).sort(), ['error', 'message', 'statusCode'])
  t.notMatch(res.body, /timed out/, 'the cause is not echoed')
})

t.test('requests are timed only when the metrics can be read (METRICS_TOKEN or METRICS_PORT): the hook costs protected reads', async (t) => {
  const series = /^http_requests_total\{[^}]*route="\/health\/live"[^}]*\} (\d+)$/m
  const off = await build(t)
  for (let i = 0; i < 3; i++) t.equal((await off.inject({ url: '/health/live' })).statusCode, 200)
  t.notMatch(await off.metricsText(), series, 'no metrics readable: no request series kept')
  for (const env of [{ METRICS_TOKEN }, { METRICS_PORT: '9464' }]) {
    const on = await build(t, env)
    for (let i = 0; i < 3; i++) t.equal((await on.inject({ url: '/health/live' })).statusCode, 200)
    t.equal(series.exec(await on.metricsText())?.[1], '3', `with ${Object.keys(env)[0]}: every request counted`)
  }
})

t.test('the counters move by exactly what was done over HTTP', async (t) => {
  const app = await build(t, { METRICS_TOKEN })
  const before = await scrape(app)
  const user = await register(app)
  const other = await newUser(app)

  // Logins: 2 successes (one above in newUser), 3 bad credentials, then a rate-limited one.
  await login(app, user.username)
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: `wrong ${i}` }, remoteAddress: '10.7.0.1' })
    t.equal(res.statusCode, 401)
  }
  for (let i = 0; i < LIMITS.loginFailuresPerIp.max - 3; i++) {
    await app.inject({ method: 'POST', url: '/auth/login', payload: { username: `nobody${i}`, password: 'wrong guess' }, remoteAddress: '10.7.0.1' })
  }
  const limited = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: PASSWORD }, remoteAddress: '10.7.0.1' })
  t.equal(limited.statusCode, 429)

  // Refreshes: one rotation, one reuse (revokes the session), one unknown token.
  const pair = await login(app, user.username)
  const rotated = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })
  t.equal(rotated.statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x'.repeat(43) } })).statusCode, 401)

  // Revocations: a logout, a logout-all covering two sessions, a deletion covering one.
  const a = await login(app, user.username)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(a.access_token) })).statusCode, 204)
  const b = await login(app, user.username)
  await login(app, user.username)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(b.access_token), payload: { scope: 'all' } })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: other.auth })).statusCode, 204)

  // Reads: three of /users/me with a live token.
  const c = await login(app, user.username)
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/users/me', headers: bearer(c.access_token) })).statusCode, 200)

  const after = await scrape(app)
  const moved = (name: string, labels?: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
  t.equal(moved('auth_logins_total', { outcome: 'success' }), 7, 'successful logins: newUser, then 6 here')
  t.equal(moved('auth_logins_total', { outcome: 'bad_credentials' }), LIMITS.loginFailuresPerIp.max)
  t.equal(moved('auth_logins_total', { outcome: 'rate_limited' }), 1)
  t.equal(moved('auth_logins_total', { outcome: 'shed' }), 0)
  t.equal(moved('auth_refresh_total', { outcome: 'rotated' }), 1)
  t.equal(moved('auth_refresh_total', { outcome: 'reuse_detected' }), 1)
  t.equal(moved('auth_refresh_total', { outcome: 'invalid' }), 1)
  t.equal(moved('auth_revocations_total', { cause: 'refresh_reuse' }), 1)
  t.equal(moved('auth_revocations_total', { cause: 'logout' }), 1)
  t.equal(moved('auth_revocations_total', { cause: 'logout_all' }), 3, 'the user\'s live sessions: the first login, b and the one after it')
  t.equal(moved('auth_revocations_total', { cause: 'account_deleted' }), 1)
  t.equal(moved('http_requests_total', { route: '/users/me', method: 'GET', status_code: '200' }), 3, 'requests by route and status')
  t.equal(after.families.find((f) => f.name === 'http_request_duration_seconds')?.type, 'HISTOGRAM', 'and their latency histogram')
  t.equal(after.value('auth_revocation_replica_trusted'), 1, 'the in-process store is always trusted')
  t.equal(after.value('auth_revocation_store_info', { kind: 'memory' }), 1)
  t.ok(after.has('auth_password_hashing_seconds'), 'hashing is timed')
})

t.test('refused access tokens are counted by reason', async (t) => {
  const app = await build(t, { METRICS_TOKEN })
  const user = await newUser(app)
  const before = await scrape(app)
  const me = async (headers: Record<string, string>) => (await app.inject({ url: '/users/me', headers })).statusCode
  t.equal(await me({}), 401, 'no Authorization header')
  t.equal(await me({ authorization: 'Basic dXNlcjpwYXNz' }), 401, 'another scheme')
  t.equal(await me(bearer('not.a.token')), 401, 'garbage')
  t.equal(await me(bearer(forge(GOOD_HEADER, claims(), 'another key of at least 32 bytes!!'))), 401, 'signed with another key')
  t.equal(await me(bearer(forge({ alg: 'none', typ: 'at+jwt' }, claims(), TEST_SECRET))), 401, 'another algorithm')
  const past = Math.floor(Date.now() / 1000) - 3600
  t.equal(await me(bearer(forge(GOOD_HEADER, claims({ iat: past, exp: past + 60 }), TEST_SECRET))), 401, 'expired')
  t.equal(await me(bearer(forge(GOOD_HEADER, claims({ sub: 42 }), TEST_SECRET))), 401, 'well signed, malformed claims')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: user.auth })).statusCode, 204)
  t.equal(await me(user.auth), 401, 'revoked')
  const after = await scrape(app)
  const moved = (reason: string) => after.value('auth_access_tokens_rejected_total', { reason }) - before.value('auth_access_tokens_rejected_total', { reason })
  t.same(
    { missing: moved('missing'), malformed: moved('malformed'), bad_signature: moved('bad_signature'), expired: moved('expired'), revoked: moved('revoked') },
    { missing: 2, malformed: 2, bad_signature: 2, expired: 1, revoked: 1 }
  )
})
