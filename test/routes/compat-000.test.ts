import t from 'tap'
import { sql } from 'drizzle-orm'
import { bearer, build, login, newUser, ownRedis, PASSWORD, redisPrefix, register, runSql, uniqueName, type App } from '../helper'

// Seed 000, "Flask JWT Authentication API Demo": its README's flow, the cases of its own
// test suite, and its token renewal (a used token is revoked, so a replay gets 401).

const creds = (username = uniqueName('demo'), password = PASSWORD) => ({ username, password })
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

async function createAndAuthenticate (app: App, user = creds()) {
  const created = await app.inject({ method: 'POST', url: '/user', payload: user })
  if (created.statusCode !== 201) throw new Error(`create failed: ${created.statusCode} ${created.body}`)
  const res = await app.inject({ method: 'POST', url: '/authenticate_user', payload: user })
  if (res.statusCode !== 200) throw new Error(`authenticate failed: ${res.statusCode} ${res.body}`)
  return { ...user, token: res.json().token as string }
}

t.test('the README flow: create, authenticate, validate, get, update, delete', async (t) => {
  const app = await build(t)
  const user = creds()

  const created = await app.inject({ method: 'POST', url: '/user', payload: user })
  t.equal(created.statusCode, 201)
  t.same(created.json(), { message: 'User created successfully' })

  const auth = await app.inject({ method: 'POST', url: '/authenticate_user', payload: user })
  t.equal(auth.statusCode, 200)
  const { token, access_token: accessToken } = auth.json()
  t.type(token, 'string')
  t.equal(accessToken, token, 'token and access_token are the same token')
  t.equal(auth.headers['cache-control'], 'no-store')

  const valid = await app.inject({ method: 'POST', url: '/validate_token', payload: { token } })
  t.equal(valid.statusCode, 200)
  t.equal(valid.json().message, 'Token is valid')
  const t2 = valid.json().token
  t.not(t2, token, 'a fresh token')

  const got = await app.inject({ method: 'GET', url: '/user', headers: bearer(t2) })
  t.equal(got.statusCode, 200)
  const body = got.json()
  t.same(Object.keys(body).sort(), ['token', 'user'])
  t.equal(body.user.username, user.username)
  t.match(body.user.id, UUID, 'the id is our UUID (the seed had an integer)')
  t.same(Object.keys(body.user).sort(), ['id', 'username'], 'nothing else, no hash')
  const t3 = body.token

  const renamed = uniqueName('renamed')
  const put = await app.inject({ method: 'PUT', url: '/user', headers: bearer(t3), payload: { username: renamed, password: 'a new long passphrase', current_password: user.password } })
  t.equal(put.statusCode, 200)
  t.equal(put.json().message, 'User updated successfully')
  const t4 = put.json().token
  const after = await app.inject({ method: 'GET', url: '/user', headers: bearer(t4) })
  t.equal(after.json().user.username, renamed)
  t.equal(after.json().user.id, body.user.id)
  const t5 = after.json().token

  // The old credentials are gone, the new ones work.
  t.equal((await app.inject({ method: 'POST', url: '/authenticate_user', payload: user })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: renamed, password: 'a new long passphrase' } })).statusCode, 200)

  const del = await app.inject({ method: 'DELETE', url: '/user', headers: bearer(t5) })
  t.equal(del.statusCode, 200)
  t.same(del.json(), { message: 'User deleted successfully' })
  t.equal((await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: renamed, password: 'a new long passphrase' } })).statusCode, 401)
  // The username is free again.
  t.equal((await app.inject({ method: 'POST', url: '/user', payload: { username: renamed, password: PASSWORD } })).statusCode, 201)
})

t.test('every renewal revokes the token it was called with: a replay gets 401', async (t) => {
  const app = await build(t)
  const { token } = await createAndAuthenticate(app)

  const v = await app.inject({ method: 'POST', url: '/validate_token', payload: { token } })
  t.equal(v.statusCode, 200)
  const replayV = await app.inject({ method: 'POST', url: '/validate_token', payload: { token } })
  t.equal(replayV.statusCode, 401)
  t.same(replayV.json(), { message: 'Invalid or expired token' })

  const g = await app.inject({ method: 'GET', url: '/user', headers: bearer(v.json().token) })
  t.equal(g.statusCode, 200)
  const replayG = await app.inject({ method: 'GET', url: '/user', headers: bearer(v.json().token) })
  t.equal(replayG.statusCode, 401)
  t.same(replayG.json(), { message: 'Invalid or expired token' })

  const p = await app.inject({ method: 'PUT', url: '/user', headers: bearer(g.json().token), payload: { username: uniqueName('r') } })
  t.equal(p.statusCode, 200)
  const replayP = await app.inject({ method: 'PUT', url: '/user', headers: bearer(g.json().token), payload: { username: uniqueName('r') } })
  t.equal(replayP.statusCode, 401)

  // A used token is refused everywhere, on the service API too; the fresh one works.
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/logout', payload: { token } })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(p.json().token) })).statusCode, 200)
})

t.test('validate_token and logout take the token from the body or from Authorization: Bearer', async (t) => {
  const app = await build(t)
  const { token } = await createAndAuthenticate(app)

  const viaBearer = await app.inject({ method: 'POST', url: '/validate_token', headers: bearer(token) })
  t.equal(viaBearer.statusCode, 200)
  const t2 = viaBearer.json().token
  const viaEmptyJson = await app.inject({ method: 'POST', url: '/validate_token', headers: { ...bearer(t2), 'content-type': 'application/json' }, payload: '' })
  t.equal(viaEmptyJson.statusCode, 200, 'an empty JSON body counts as no body')
  const t3 = viaEmptyJson.json().token

  // The body wins over the header: a dead token in the body is 401 even with a live bearer.
  const both = await app.inject({ method: 'POST', url: '/validate_token', headers: bearer(t3), payload: { token } })
  t.equal(both.statusCode, 401)

  const out = await app.inject({ method: 'POST', url: '/logout', headers: bearer(t3) })
  t.equal(out.statusCode, 200)
  t.same(out.json(), { message: 'Logged out successfully' })
  t.equal((await app.inject({ method: 'POST', url: '/validate_token', payload: { token: t3 } })).statusCode, 401, 'dead after logout')

  const other = await createAndAuthenticate(app)
  const outBody = await app.inject({ method: 'POST', url: '/logout', payload: { token: other.token } })
  t.equal(outBody.statusCode, 200)
  t.same(outBody.json(), { message: 'Logged out successfully' })
  const again = await app.inject({ method: 'POST', url: '/logout', payload: { token: other.token } })
  t.equal(again.statusCode, 401, 'a second logout with the same token')
  t.equal((await app.inject({ method: 'GET', url: '/user', headers: bearer(other.token) })).statusCode, 401)
})

t.test('logout kills the whole session, renewed tokens included, and nothing else', async (t) => {
  const app = await build(t)
  const user = await createAndAuthenticate(app)
  const second = await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: user.username, password: user.password } })
  const renewed = (await app.inject({ method: 'POST', url: '/validate_token', payload: { token: user.token } })).json().token
  const renewedAgain = (await app.inject({ method: 'GET', url: '/user', headers: bearer(renewed) })).json().token
  t.equal((await app.inject({ method: 'POST', url: '/logout', payload: { token: renewedAgain } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/user', headers: bearer(renewedAgain) })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/user', headers: bearer(second.json().token) })).statusCode, 200, 'another login lives on')
})

t.test('no token and invalid tokens: 401 with the seed\'s messages', async (t) => {
  const app = await build(t)
  const user = await newUser(app)
  const [h, p] = user.tokens.access_token.split('.')

  for (const [method, url] of [['GET', '/user'], ['PUT', '/user'], ['DELETE', '/user']] as const) {
    const payload = method === 'PUT' ? { username: uniqueName() } : undefined
    const none = await app.inject({ method, url, payload })
    t.equal(none.statusCode, 401, `${method} ${url} without a token`)
    t.same(none.json(), { message: 'Token is missing' })
    for (const [name, token] of [['garbage', 'not-a-jwt'], ['forged', `${h}.${p}.${'A'.repeat(43)}`], ['refresh token', user.tokens.refresh_token]]) {
      const res = await app.inject({ method, url, payload, headers: bearer(token) })
      t.equal(res.statusCode, 401, `${method} ${url} ${name}`)
      t.same(res.json(), { message: 'Invalid or expired token' })
    }
  }
  for (const url of ['/validate_token', '/logout']) {
    const none = await app.inject({ method: 'POST', url })
    t.equal(none.statusCode, 401, `${url} without a token`)
    t.same(none.json(), { message: 'Token is missing' })
    const emptyBody = await app.inject({ method: 'POST', url, payload: {} })
    t.same(emptyBody.json(), { message: 'Token is missing' }, `${url} with {}`)
    for (const token of ['not-a-jwt', `${h}.${p}.${'A'.repeat(43)}`, user.tokens.refresh_token, '']) {
      const res = await app.inject({ method: 'POST', url, payload: { token } })
      t.equal(res.statusCode, 401, `${url} ${token.slice(0, 10)}`)
    }
    const wrongType = await app.inject({ method: 'POST', url, payload: { token: 12345 } })
    t.equal(wrongType.statusCode, 400, `${url}: a token that is not a string`)
    t.same(Object.keys(wrongType.json()), ['message'])
    const extra = await app.inject({ method: 'POST', url, payload: { token: user.tokens.access_token, admin: true } })
    t.equal(extra.statusCode, 400, `${url}: unknown property`)
  }
  // None of that used up the real token.
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: user.auth })).statusCode, 200)
})

t.test('create and authenticate errors', async (t) => {
  const app = await build(t)
  const user = creds()
  await app.inject({ method: 'POST', url: '/user', payload: user })

  const dup = await app.inject({ method: 'POST', url: '/user', payload: { ...user, username: user.username.toUpperCase() } })
  t.equal(dup.statusCode, 409)
  t.same(Object.keys(dup.json()), ['message'])
  for (const [name, payload] of [
    ['missing password', { username: uniqueName() }],
    ['wrong type', { username: uniqueName(), password: 12345678 }],
    ['unknown property', { ...creds(), id: 1 }],
    ['common password', creds(undefined, 'password123')],
    ['short password', creds(undefined, 'short')]
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/user', payload })
    t.equal(res.statusCode, 400, name)
    t.same(Object.keys(res.json()), ['message'], `${name}: {message}`)
  }
  const notJson = await app.inject({ method: 'POST', url: '/user', payload: '{"password": "hunter2hunter2"', headers: { 'content-type': 'application/json' } })
  t.equal(notJson.statusCode, 400)
  t.notMatch(notJson.json().message, /hunter2/, 'the body is not echoed')

  // Wrong password and unknown user: the same 401 (the seed's 404 told who has an account).
  const wrong = await app.inject({ method: 'POST', url: '/authenticate_user', payload: { ...user, password: 'not the password' } })
  const unknown = await app.inject({ method: 'POST', url: '/authenticate_user', payload: creds() })
  t.equal(wrong.statusCode, 401)
  t.same(wrong.json(), { error: 'Invalid credentials' })
  t.equal(unknown.statusCode, 401)
  t.same(unknown.json(), wrong.json())
  const missing = await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: user.username } })
  t.equal(missing.statusCode, 400)
  t.same(Object.keys(missing.json()), ['message'])

  const form = await app.inject({ method: 'POST', url: '/user', payload: 'username=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(form.statusCode, 415)
  t.equal(form.json().statusCode, 415, '415 keeps the common shape')
})

t.test('update: validation, 409, and a password change ends the other sessions', async (t) => {
  const app = await build(t)
  const user = await createAndAuthenticate(app)
  const other = (await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: user.username, password: user.password } })).json().token
  const taken = creds()
  await app.inject({ method: 'POST', url: '/user', payload: taken })

  let token = user.token
  for (const [name, payload, status] of [
    ['empty body', {}, 400],
    ['unknown property', { role: 'admin' }, 400],
    ['bad username', { username: 'a b' }, 400],
    ['short password', { password: 'short' }, 400],
    ['common password', { password: 'password123' }, 400],
    ['taken username', { username: taken.username.toUpperCase() }, 409]
  ] as const) {
    const res = await app.inject({ method: 'PUT', url: '/user', headers: bearer(token), payload })
    t.equal(res.statusCode, status, name)
    t.same(Object.keys(res.json()), ['message'], `${name}: {message}`)
  }
  // A refused update did not use the token up.
  t.equal((await app.inject({ method: 'POST', url: '/validate_token', payload: { token: other } })).statusCode, 200)

  // Unlike the seed, a password change needs the current password: a stolen token is not enough.
  const missing = await app.inject({ method: 'PUT', url: '/user', headers: bearer(token), payload: { password: 'another long passphrase' } })
  t.equal(missing.statusCode, 400, 'without current_password')
  t.same(Object.keys(missing.json()), ['message'])
  t.match(missing.json().message, /current_password/)
  const wrong = await app.inject({ method: 'PUT', url: '/user', headers: bearer(token), payload: { password: 'another long passphrase', current_password: 'not the password' } })
  t.equal(wrong.statusCode, 403, 'with a wrong current_password')
  t.same(Object.keys(wrong.json()), ['message'])
  t.equal((await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: user.username, password: user.password } })).statusCode, 200, 'nothing changed: the old password still logs in')
  t.equal((await app.inject({ method: 'POST', url: '/validate_token', payload: { token: other } })).statusCode, 401, 'the other session\'s token was renewed above, so this copy is spent')
  const other2 = (await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: user.username, password: user.password } })).json().token

  const changed = await app.inject({ method: 'PUT', url: '/user', headers: bearer(token), payload: { password: 'another long passphrase', current_password: user.password } })
  t.equal(changed.statusCode, 200, 'with the right current_password')
  token = changed.json().token
  t.equal((await app.inject({ method: 'GET', url: '/user', headers: bearer(token) })).statusCode, 200, 'the renewed token lives')
  const otherAfter = await app.inject({ method: 'POST', url: '/validate_token', payload: { token: other2 } })
  t.equal(otherAfter.statusCode, 401, 'the other sessions were revoked')
  t.equal((await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: user.username, password: 'another long passphrase' } })).statusCode, 200, 'the new password logs in')
})

t.test('delete kills every token of the user', async (t) => {
  const app = await build(t)
  const user = await createAndAuthenticate(app)
  const pair = await login(app, user.username)
  const del = await app.inject({ method: 'DELETE', url: '/user', headers: bearer(user.token) })
  t.equal(del.statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/user', headers: bearer(user.token) })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(pair.access_token) })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })).statusCode, 401)
  t.equal((await app.inject({ method: 'DELETE', url: '/user', headers: bearer(pair.access_token) })).statusCode, 401)
})

t.test('tokens and users cross surfaces', async (t) => {
  const app = await build(t)

  // A service API user authenticates here; the token works on /users/me.
  const apiUser = await register(app)
  const demo = await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: apiUser.username, password: PASSWORD } })
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(demo.json().token) })
  t.equal(me.json().id, apiUser.id)

  // A service API token is renewed here, and the id matches.
  const api = await newUser(app)
  const got = await app.inject({ method: 'GET', url: '/user', headers: api.auth })
  t.equal(got.statusCode, 200)
  t.equal(got.json().user.id, api.id)
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: api.auth })).statusCode, 401, 'the renewal revoked it for the service API too')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(got.json().token) })).statusCode, 200)

  // A 000 user logs in on the 001 surface and the other way round.
  const u = creds()
  await app.inject({ method: 'POST', url: '/user', payload: u })
  const tpl = await app.inject({ method: 'POST', url: '/login', payload: u })
  t.equal(tpl.statusCode, 200)
  const validated = await app.inject({ method: 'POST', url: '/validate_token', payload: { token: tpl.json().access_token } })
  t.equal(validated.statusCode, 200)
  t.same((await app.inject({ method: 'GET', url: '/protected', headers: bearer(validated.json().token) })).json(), { logged_in_as: u.username })
  const w = creds()
  await app.inject({ method: 'POST', url: '/register', payload: w })
  t.equal((await app.inject({ method: 'POST', url: '/authenticate_user', payload: w })).statusCode, 200)

  // Introspection sees a renewed token as active and the used one as not.
  const intro = async (token: string) => (await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token } })).json().active
  t.equal(await intro(validated.json().token), true)
  t.equal(await intro(tpl.json().access_token), false)
})

t.test('renewal does not outlive the session: an expired session\'s token is refused', async (t) => {
  const app = await build(t)
  const user = await createAndAuthenticate(app)
  const renewed = (await app.inject({ method: 'POST', url: '/validate_token', payload: { token: user.token } })).json().token
  const id = (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(renewed) })).json().id
  // The session reaches its end (REFRESH_TOKEN_TTL) while the access token is still unexpired.
  await runSql(app, sql`UPDATE sessions SET expires_at = ${Date.now() - 1} WHERE user_id = ${id}`)
  for (const req of [
    { method: 'POST', url: '/validate_token', payload: { token: renewed } },
    { method: 'GET', url: '/user', headers: bearer(renewed) },
    { method: 'PUT', url: '/user', headers: bearer(renewed), payload: { username: uniqueName('late') } }
  ] as const) {
    const res = await app.inject(req)
    t.equal(res.statusCode, 401, `${req.method} ${req.url}`)
    t.same(res.json(), { message: 'Invalid or expired token' })
  }
  t.equal((await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: user.username, password: user.password } })).statusCode, 200, 'the account is untouched: a new login works')
})

t.test('503 in the {message} shape when the revocation store is down', async (t) => {
  const redis = await ownRedis(t)
  const app = await build(t, { REDIS_URL: redis.url, REDIS_PREFIX: redisPrefix().slice(0, 60) })
  const user = await createAndAuthenticate(app)

  await redis.stop()
  const requests = [
    { method: 'POST', url: '/validate_token', payload: { token: user.token } },
    { method: 'POST', url: '/logout', payload: { token: user.token } },
    { method: 'GET', url: '/user', headers: bearer(user.token) },
    { method: 'PUT', url: '/user', headers: bearer(user.token), payload: { username: uniqueName() } },
    { method: 'DELETE', url: '/user', headers: bearer(user.token) }
  ] as const
  for (const req of requests) {
    const res = await app.inject(req)
    t.equal(res.statusCode, 503, `${req.method} ${req.url}`)
    t.same(Object.keys(res.json()), ['message'])
  }
  t.equal((await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: user.username, password: user.password } })).statusCode, 200, 'login does not need the store')

  // Back up (so that the app also closes cleanly): the 503s neither used nor renamed anything.
  await redis.start()
  let status = 0
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await app.inject({ method: 'POST', url: '/validate_token', payload: { token: user.token } })).statusCode
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 200, 'the token still works once the store is back')
})

t.test('OpenAPI: the 000 routes are tagged compat, deprecated and fully described', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  // Request bodies are named components: a generated client gets one type each.
  const component = (schema: { $ref?: string }) => {
    t.match(schema.$ref, /^#\/components\/schemas\//, 'a $ref to a component')
    return doc.components.schemas[schema.$ref!.split('/').pop()!]
  }
  const expected: Array<[string, string, string[], boolean]> = [
    ['/user', 'post', ['201', '400', '409', '413', '415', '429', '503'], false],
    ['/authenticate_user', 'post', ['200', '400', '401', '413', '415', '429', '503'], false],
    ['/validate_token', 'post', ['200', '400', '401', '413', '415', '503'], true],
    ['/user', 'get', ['200', '401', '503'], true],
    ['/user', 'put', ['200', '400', '401', '403', '409', '413', '415', '429', '503'], true],
    ['/user', 'delete', ['200', '401', '413', '415', '503'], true],
    ['/logout', 'post', ['200', '400', '401', '413', '415', '503'], true]
  ]
  for (const [path, method, statuses, secured] of expected) {
    const op = doc.paths[path]?.[method]
    t.ok(op, `${method} ${path} documented`)
    if (op === undefined) continue
    t.same(op.tags, ['compat'], `${method} ${path} tag`)
    t.equal(op.deprecated, true, `${method} ${path} deprecated`)
    t.match(op.operationId, /^compatDemo/)
    t.type(op.summary, 'string')
    t.same(Object.keys(op.responses).sort(), statuses, `${method} ${path} statuses`)
    for (const s of statuses) t.ok(op.responses[s].content['application/json'].schema, `${method} ${path} ${s} schema`)
    for (const s of statuses.filter((s) => ['400', '401', '403', '409', '429', '503'].includes(s))) {
      if (path === '/authenticate_user' && s === '401') continue // {"error": ...}, as the seed answered
      t.same(op.responses[s].content['application/json'].schema, { $ref: '#/components/schemas/CompatMessageError' },
        `${method} ${path} ${s}: the one shared {message} component`)
    }
    if (secured) t.same(op.security, [{ bearerAuth: [] }], `${method} ${path} security`)
    else t.equal(op.security, undefined, `${method} ${path} is public`)
    if (['post', 'put'].includes(method)) {
      t.ok(component(op.requestBody.content['application/json'].schema).properties, `${method} ${path} body schema`)
    }
  }
  t.same(doc.paths['/authenticate_user'].post.responses['401'].content['application/json'].schema.required, ['error'])
  t.ok(component(doc.paths['/validate_token'].post.requestBody.content['application/json'].schema).properties.token)
  for (const path of ['/validate_token', '/logout']) {
    t.equal(doc.paths[path].post.requestBody.required, false, `${path}: the body is optional (the token may come as Bearer)`)
  }
  t.equal(doc.paths['/user'].put.requestBody.required, true)
})
