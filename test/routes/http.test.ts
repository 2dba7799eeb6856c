import t from 'tap'
import { Writable } from 'node:stream'
import { buildApp } from '../../src/app'
import { loadConfig } from '../../src/config'
import { loggerOptions } from '../../src/logger'
import { build, login, newUser, PASSWORD, testEnv, uniqueName } from '../helper'

const ERROR_KEYS = ['error', 'message', 'statusCode']
const keysOf = (o: object) => Object.keys(o).filter((k) => k !== 'code').sort()

t.test('body rules: 413, 415, 400 and the one error shape', async (t) => {
  const app = await build(t)
  const name = uniqueName()

  const big = await app.inject({ method: 'POST', url: '/auth/register', payload: { username: name, password: 'x'.repeat(1024 * 1024) } })
  t.equal(big.statusCode, 413, 'a 1 MB password is refused before any hashing')
  t.same(keysOf(big.json()), ERROR_KEYS)

  const text = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'text/plain' }, payload: `username=${name}&password=${PASSWORD}` })
  t.equal(text.statusCode, 415)
  t.same(keysOf(text.json()), ERROR_KEYS)
  const form = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `username=${name}&password=${PASSWORD}` })
  t.equal(form.statusCode, 415)

  const broken = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: `{"username":"${name}","password":"${PASSWORD}"` })
  t.equal(broken.statusCode, 400)
  t.equal(broken.json().message, 'Body is not valid JSON')
  t.notMatch(broken.body, PASSWORD, 'the parse error does not quote the body')

  const empty = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: '' })
  t.equal(empty.statusCode, 400, 'empty body where one is required')

  const proto = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: `{"username":"${name}","password":"${PASSWORD}","__proto__":{"admin":true}}` })
  t.equal(proto.statusCode, 400, 'prototype poisoning is refused')

  const coerced = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 12345, password: 12345678 } })
  t.equal(coerced.statusCode, 400, 'numbers are not coerced into strings')

  // none of these created the account
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: name, password: PASSWORD } })).statusCode, 401)
})

t.test('unknown routes: 404 in the same shape; no trailing-slash guessing', async (t) => {
  const app = await build(t)
  for (const [method, url] of [['GET', '/nope'], ['GET', '/users/me/'], ['POST', '/auth/login/'], ['GET', '/users/me/sessions/x/y']] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.same(keysOf(res.json()), ERROR_KEYS)
    t.equal(res.headers.allow, undefined, 'no Allow on a 404')
  }
})

t.test('headers: nosniff, no-store, no X-Powered-By, no CORS unless configured', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example' } })
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['cache-control'], 'no-store')
  t.notOk(res.headers['x-powered-by'])
  t.notOk(res.headers['access-control-allow-origin'], 'no CORS headers by default')
  const preflight = await app.inject({ method: 'OPTIONS', url: '/auth/login', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.notOk(preflight.headers['access-control-allow-origin'])
})

t.test('CORS only for the configured origins', async (t) => {
  const app = await build(t, { CORS_ORIGIN: 'https://app.example,http://localhost:5173' })
  const allowed = await app.inject({ method: 'OPTIONS', url: '/auth/login', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example')
  t.match(String(allowed.headers['access-control-allow-headers']), /Authorization/)
  const other = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example' } })
  t.notOk(other.headers['access-control-allow-origin'])
})

t.test('5xx hides its details; the error is logged with the request id', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  const app = await buildApp(loadConfig(testEnv({ LOG_LEVEL: 'info' })), { logger: { ...(loggerOptions('info') as object), stream } })
  app.get('/boom', async () => { throw new Error('SQLITE secret internals at /srv/db line 42') })
  t.teardown(() => app.close())
  await app.ready()
  const res = await app.inject({ url: '/boom' })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
  t.notMatch(res.body, /secret internals|stack|at /)
  const logged = lines.map((l) => JSON.parse(l)).find((l) => l.err?.message?.includes('secret internals'))
  t.ok(logged, 'the full error is in the log')
  t.ok(logged.reqId, 'with the request id')
  t.equal(logged.level, 50, 'as an error')
  t.match(logged.err.stack, /\n\s+at /, 'with its stack: an unexpected 5xx keeps the whole error (a 503 does not: outage-logs.test.ts)')
})

t.test('logs: security events are recorded, secrets never are', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  const app = await buildApp(loadConfig(testEnv({ LOG_LEVEL: 'trace' })), { logger: { ...(loggerOptions('trace') as object), stream } })
  t.teardown(() => app.close())
  await app.ready()
  const u = await newUser(app)
  await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: 'a wrong password typed' } })
  await app.inject({ method: 'POST', url: '/auth/login', payload: { username: uniqueName('ghost'), password: 'a wrong password typed' } })
  const next = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })).json()
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } }) // reuse
  const again = await login(app, u.username)
  const changed = await app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${again.access_token}` }, payload: { password: 'the next passphrase', current_password: PASSWORD } })
  t.equal(changed.statusCode, 200)
  const v = await newUser(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: v.auth })
  const w = await newUser(app)
  await app.inject({ method: 'DELETE', url: '/users/me', headers: w.auth })

  const all = lines.join('\n')
  for (const secret of [PASSWORD, 'a wrong password typed', 'the next passphrase', u.tokens.access_token, u.tokens.refresh_token, next.access_token, next.refresh_token, v.tokens.access_token]) {
    t.notOk(all.includes(secret), `never logged: ${secret.slice(0, 12)}...`)
  }
  const events = lines.map((l) => JSON.parse(l).event).filter(Boolean)
  for (const event of ['user.registered', 'login.success', 'login.failure', 'refresh.reuse', 'user.password_changed', 'logout', 'user.deleted']) {
    t.ok(events.includes(event), `event ${event} logged`)
  }
})

t.test('docs: Swagger UI and the OpenAPI 3 document', async (t) => {
  const app = await build(t)
  const ui = await app.inject({ url: '/docs' })
  t.ok([200, 302].includes(ui.statusCode))
  const doc = await app.inject({ url: '/docs/json' })
  t.equal(doc.statusCode, 200)
  const spec = doc.json()
  t.match(spec.openapi, /^3\./)
  t.ok(spec.components.securitySchemes.bearerAuth)
  for (const path of ['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout', '/auth/introspect', '/users/me', '/users/me/sessions', '/users/me/sessions/{id}', '/health']) {
    t.ok(spec.paths[path], `${path} documented`)
  }
  t.same(spec.paths['/users/me'].get.security, [{ bearerAuth: [] }])
})
