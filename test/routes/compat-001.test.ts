import t from 'tap'
import type { InjectOptions } from 'fastify'
import { LIMITS } from '../../plugins/app/rate-limits'
import { bearer, build, login, newUser, ownRedis, PASSWORD, redisPrefix, register, type App, uniqueName, waitFor } from '../helper'

// Seed 001, "Flask JWT Authentication Template": its README's flow and its error cases.

const creds = (username = uniqueName('tpl'), password = PASSWORD) => ({ username, password })

async function templateLogin (app: App, username: string, password = PASSWORD) {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { username, password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json() as { access_token: string, refresh_token: string }
}

t.test('the README flow: register, login, protected, logout', async (t) => {
  const app = await build(t)
  const user = creds()

  const reg = await app.inject({ method: 'POST', url: '/register', payload: user })
  t.equal(reg.statusCode, 201)
  t.same(reg.json(), { msg: 'User registered successfully' })

  const log = await app.inject({ method: 'POST', url: '/login', payload: user })
  t.equal(log.statusCode, 200)
  const body = log.json()
  t.same(Object.keys(body).sort(), ['access_token', 'refresh_token'])
  t.equal(log.headers['cache-control'], 'no-store')

  const prot = await app.inject({ method: 'GET', url: '/protected', headers: bearer(body.access_token) })
  t.equal(prot.statusCode, 200)
  t.same(prot.json(), { logged_in_as: user.username })

  const out = await app.inject({ method: 'DELETE', url: '/logout', headers: bearer(body.access_token) })
  t.equal(out.statusCode, 200)
  t.same(out.json(), { msg: 'Successfully logged out' })

  // The token is dead afterwards, and so is the session's refresh token.
  const again = await app.inject({ method: 'GET', url: '/protected', headers: bearer(body.access_token) })
  t.equal(again.statusCode, 401)
  t.type(again.json().msg, 'string')
  const out2 = await app.inject({ method: 'DELETE', url: '/logout', headers: bearer(body.access_token) })
  t.equal(out2.statusCode, 401)
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: body.refresh_token } })
  t.equal(refresh.statusCode, 401)
})

t.test('register errors: 409 taken (case-insensitively), 400 in the {msg} shape', async (t) => {
  const app = await build(t)
  const user = creds()
  t.equal((await app.inject({ method: 'POST', url: '/register', payload: user })).statusCode, 201)

  const dup = await app.inject({ method: 'POST', url: '/register', payload: { ...user, username: user.username.toUpperCase() } })
  t.equal(dup.statusCode, 409)
  t.same(Object.keys(dup.json()), ['msg'])

  const bad: Array<[string, InjectOptions]> = [
    ['no body', {}],
    ['missing password', { payload: { username: uniqueName() } }],
    ['missing username', { payload: { password: PASSWORD } }],
    ['wrong type', { payload: { username: uniqueName(), password: 12345678 } }],
    ['unknown property', { payload: { ...creds(), admin: true } }],
    ['short password', { payload: creds(undefined, 'short') }],
    ['common password', { payload: creds(undefined, 'password123') }],
    ['bad username', { payload: creds('no spaces allowed') }],
    ['not JSON', { payload: '{"username":', headers: { 'content-type': 'application/json' } }]
  ]
  for (const [name, req] of bad) {
    const res = await app.inject({ method: 'POST', url: '/register', ...req })
    t.equal(res.statusCode, 400, name)
    const json = res.json()
    t.same(Object.keys(json), ['msg'], `${name}: {msg}`)
    t.notMatch(json.msg, /12345678|"username":/, `${name}: nothing echoed`)
  }

  // 413 and 415 keep the common shape.
  const form = await app.inject({ method: 'POST', url: '/register', payload: 'username=a&password=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(form.statusCode, 415)
  t.equal(form.json().statusCode, 415)
  const big = await app.inject({ method: 'POST', url: '/register', payload: { username: uniqueName(), password: 'x'.repeat(20_000) } })
  t.equal(big.statusCode, 413)
  t.equal(big.json().error, 'Payload Too Large')
})

t.test('login errors: unknown user and wrong password get the same 401, missing credentials 400', async (t) => {
  const app = await build(t)
  const user = creds()
  await app.inject({ method: 'POST', url: '/register', payload: user })

  const wrong = await app.inject({ method: 'POST', url: '/login', payload: { ...user, password: 'not the password' } })
  const unknown = await app.inject({ method: 'POST', url: '/login', payload: creds() })
  t.equal(wrong.statusCode, 401)
  t.same(wrong.json(), { msg: 'Bad username or password' })
  t.equal(unknown.statusCode, 401)
  t.same(unknown.json(), wrong.json())

  const missing = await app.inject({ method: 'POST', url: '/login', payload: { username: user.username } })
  t.equal(missing.statusCode, 400)
  t.same(Object.keys(missing.json()), ['msg'])
  const empty = await app.inject({ method: 'POST', url: '/login' })
  t.equal(empty.statusCode, 400)

  // Case-insensitive usernames, as everywhere.
  const upper = await app.inject({ method: 'POST', url: '/login', payload: { ...user, username: user.username.toUpperCase() } })
  t.equal(upper.statusCode, 200)
})

t.test('protected and logout refuse a missing, malformed, forged or refresh token with {msg}', async (t) => {
  const app = await build(t)
  const user = await newUser(app)
  const [h, p] = user.tokens.access_token.split('.')
  const cases: Array<[string, Record<string, string>]> = [
    ['no header', {}],
    ['not bearer', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
    ['garbage', bearer('not-a-jwt')],
    ['forged signature', bearer(`${h}.${p}.${'A'.repeat(43)}`)],
    ['refresh token', bearer(user.tokens.refresh_token)]
  ]
  for (const [name, headers] of cases) {
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await app.inject({ method, url: method === 'GET' ? '/protected' : '/logout', headers })
      t.equal(res.statusCode, 401, `${method} ${name}`)
      t.same(Object.keys(res.json()), ['msg'], `${method} ${name}: {msg}`)
    }
  }
  // none of that touched the real session
  t.equal((await app.inject({ method: 'GET', url: '/protected', headers: user.auth })).statusCode, 200)
})

t.test('logout ends only its own session', async (t) => {
  const app = await build(t)
  const user = creds()
  await app.inject({ method: 'POST', url: '/register', payload: user })
  const a = await templateLogin(app, user.username)
  const b = await templateLogin(app, user.username)
  t.equal((await app.inject({ method: 'DELETE', url: '/logout', headers: bearer(a.access_token) })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/protected', headers: bearer(a.access_token) })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/protected', headers: bearer(b.access_token) })).statusCode, 200)
})

t.test('tokens and users cross surfaces', async (t) => {
  const app = await build(t)

  // A user of the service API logs in here, and the token works on /protected.
  const apiUser = await register(app)
  const tpl = await templateLogin(app, apiUser.username)
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tpl.access_token) })
  t.equal(me.statusCode, 200)
  t.equal(me.json().id, apiUser.id)

  // The refresh token of /login rotates on /auth/refresh.
  const rotated = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: tpl.refresh_token } })
  t.equal(rotated.statusCode, 200)
  t.not(rotated.json().refresh_token, tpl.refresh_token)

  // A user registered here logs in on the service API; that token works here.
  const u = creds()
  await app.inject({ method: 'POST', url: '/register', payload: u })
  const pair = await login(app, u.username)
  const prot = await app.inject({ method: 'GET', url: '/protected', headers: bearer(pair.access_token) })
  t.same(prot.json(), { logged_in_as: u.username })

  // Logging out here kills the token on the service API too.
  await app.inject({ method: 'DELETE', url: '/logout', headers: bearer(pair.access_token) })
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(pair.access_token) })).statusCode, 401)

  // A token of the 000 surface is accepted as well.
  const demo = await app.inject({ method: 'POST', url: '/authenticate_user', payload: u })
  const viaDemo = await app.inject({ method: 'GET', url: '/protected', headers: bearer(demo.json().token) })
  t.same(viaDemo.json(), { logged_in_as: u.username })

  // A deleted account's token stops working here.
  const doomed = await newUser(app)
  await app.inject({ method: 'DELETE', url: '/users/me', headers: doomed.auth })
  t.equal((await app.inject({ method: 'GET', url: '/protected', headers: doomed.auth })).statusCode, 401)
})

t.test('503 in the {msg} shape when the revocation store is down', async (t) => {
  const redis = await ownRedis(t)
  const app = await build(t, { REDIS_URL: redis.url, REDIS_PREFIX: redisPrefix().slice(0, 60) })
  const user = await newUser(app)
  t.equal((await app.inject({ method: 'GET', url: '/protected', headers: user.auth })).statusCode, 200)

  await redis.stop()
  // The blocklist replica answers until the dropped connection is noticed (milliseconds).
  await waitFor(async () => (await app.inject({ method: 'GET', url: '/protected', headers: user.auth })).statusCode === 503)
  for (const method of ['GET', 'DELETE'] as const) {
    const res = await app.inject({ method, url: method === 'GET' ? '/protected' : '/logout', headers: user.auth })
    t.equal(res.statusCode, 503, method)
    t.same(Object.keys(res.json()), ['msg'])
  }
  // Register and login do not depend on the store.
  const u = creds()
  t.equal((await app.inject({ method: 'POST', url: '/register', payload: u })).statusCode, 201)
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: u })).statusCode, 200)

  // Back up (so that the app also closes cleanly): the 503s revoked nothing.
  await redis.start()
  let status = 0
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await app.inject({ method: 'GET', url: '/protected', headers: user.auth })).statusCode
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 200, 'the token works again once the store is back')
})

t.test('failed logins on either seed count with the service API\'s: 429 in the seed\'s shape', async (t) => {
  const app = await build(t)
  const user = creds()
  await app.inject({ method: 'POST', url: '/register', payload: user })
  const ip = '10.77.0.1'
  const max = LIMITS.loginFailuresPerIp.max
  for (let i = 0; i < max; i++) {
    const url = ['/login', '/authenticate_user', '/auth/login'][i % 3]
    const res = await app.inject({ method: 'POST', url, payload: creds(), remoteAddress: ip })
    t.equal(res.statusCode, 401, `failure ${i} on ${url}`)
  }
  const tpl = await app.inject({ method: 'POST', url: '/login', payload: user, remoteAddress: ip })
  t.equal(tpl.statusCode, 429, 'even the right password')
  t.same(Object.keys(tpl.json()), ['msg'])
  t.ok(Number(tpl.headers['retry-after']) > 0, 'Retry-After')
  const demo = await app.inject({ method: 'POST', url: '/authenticate_user', payload: user, remoteAddress: ip })
  t.equal(demo.statusCode, 429)
  t.same(Object.keys(demo.json()), ['message'])
  t.ok(Number(demo.headers['retry-after']) > 0)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: user, remoteAddress: ip })).statusCode, 429)
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: user, remoteAddress: '10.77.0.2' })).statusCode, 200, 'another client is fine')
})

t.test('OpenAPI: the 001 routes are tagged compat, deprecated and fully described', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  const expected: Array<[string, string, string[], boolean]> = [
    ['/register', 'post', ['201', '400', '409', '413', '415', '429', '503'], false],
    ['/login', 'post', ['200', '400', '401', '403', '413', '415', '429', '503'], false], // 403: a disabled account
    ['/protected', 'get', ['200', '401', '503'], true],
    ['/logout', 'delete', ['200', '401', '413', '415', '503'], true]
  ]
  for (const [path, method, statuses, secured] of expected) {
    const op = doc.paths[path]?.[method]
    t.ok(op, `${method} ${path} documented`)
    if (op === undefined) continue
    t.same(op.tags, ['compat'], `${path} tag`)
    t.equal(op.deprecated, true, `${path} deprecated`)
    t.match(op.operationId, /^compatTemplate/, `${path} operationId`)
    t.type(op.summary, 'string')
    t.same(Object.keys(op.responses).sort(), statuses, `${method} ${path} statuses`)
    for (const s of statuses) t.ok(op.responses[s].content['application/json'].schema, `${path} ${s} schema`)
    for (const s of statuses.filter((s) => ['400', '401', '409', '429', '503'].includes(s))) {
      t.same(op.responses[s].content['application/json'].schema, { $ref: '#/components/schemas/CompatMsgError' },
        `${method} ${path} ${s}: the one shared {msg} component`)
    }
    if (secured) t.same(op.security, [{ bearerAuth: [] }], `${path} security`)
    else t.equal(op.security, undefined, `${path} is public`)
    if (method === 'post') {
      const ref = op.requestBody.content['application/json'].schema.$ref as string
      t.match(ref, /^#\/components\/schemas\//, `${path} body: a named component`)
      t.ok(doc.components.schemas[ref.split('/').pop()!].properties.password, `${path} body schema`)
    }
  }
  t.same(doc.paths['/protected'].get.responses['200'].content['application/json'].schema.required, ['logged_in_as'])
})
