import t from 'tap'
import Ajv from 'ajv'
import type { InjectOptions } from 'fastify'
import { bearer, build, newUser, PASSWORD, uniqueName, type App } from '../helper'

// What a user reads when a request is refused: the field and the rule, once; the fix for a
// wrong content type or a header without "Bearer "; the methods a path takes; where the docs
// are. Every answer keeps the contract's shape.

const ERROR_KEYS = ['error', 'message', 'statusCode']
const keysOf = (o: object) => Object.keys(o).filter((k) => k !== 'code').sort()

async function message (app: App, opts: InjectOptions) {
  const res = await app.inject(opts)
  return { status: res.statusCode, body: res.json(), res }
}

t.test('validation errors name the field and what is allowed, once, with no regex and no Ajv wording', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const cases: Array<[string, InjectOptions, string]> = [
    // The three messages of the issue, and their neighbours.
    ['logout: scope out of its enum', { method: 'POST', url: '/auth/logout', headers: u.auth, payload: { scope: 'everything' } },
      'scope must be one of: "session", "all"'],
    ['logout: an unknown field', { method: 'POST', url: '/auth/logout', headers: u.auth, payload: { scopes: 'all' } },
      'Unknown field "scopes" in the body; allowed: scope'],
    ['PATCH /users/me: nothing to change', { method: 'PATCH', url: '/users/me', headers: u.auth, payload: {} },
      'Nothing to change: give username and/or password'],
    ['PATCH /users/me: current_password alone', { method: 'PATCH', url: '/users/me', headers: u.auth, payload: { current_password: PASSWORD } },
      'Nothing to change: give username and/or password'],
    ['PATCH /users/me: password without current_password', { method: 'PATCH', url: '/users/me', headers: u.auth, payload: { password: 'a new long passphrase' } },
      'current_password is required to change the password'],
    ['register: a username with a space', { method: 'POST', url: '/auth/register', payload: { username: 'a b c', password: PASSWORD } },
      'username must be 3 to 64 characters of A-Z a-z 0-9 . _ -'],
    ['register: a username too short', { method: 'POST', url: '/auth/register', payload: { username: 'ab', password: PASSWORD } },
      'username must be 3 to 64 characters of A-Z a-z 0-9 . _ -'],
    ['register: a short password', { method: 'POST', url: '/auth/register', payload: { username: uniqueName(), password: 'hunter2' } },
      'password must be 8 to 1024 characters'],
    ['register: a missing field', { method: 'POST', url: '/auth/register', payload: { username: uniqueName() } },
      'password is required'],
    ['login: a number for a string', { method: 'POST', url: '/auth/login', payload: { username: 12345, password: PASSWORD } },
      'username must be a string'],
    ['login: no body', { method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: '' },
      'A JSON body is required'],
    ['login: an array body', { method: 'POST', url: '/auth/login', payload: [1] },
      'The body must be a JSON object'],
    ['refresh: an empty token', { method: 'POST', url: '/auth/refresh', payload: { refresh_token: '' } },
      'refresh_token must be 1 to 512 characters'],
    ['sessions: an id over 64 characters', { method: 'DELETE', url: `/users/me/sessions/${'a'.repeat(65)}`, headers: u.auth },
      'path parameter id must be 1 to 64 characters']
  ]
  for (const [name, request, expected] of cases) {
    const { status, body } = await message(app, request)
    t.equal(status, 400, `${name}: 400`)
    t.same(keysOf(body), ERROR_KEYS, `${name}: the error shape`)
    t.equal(body.message, expected, name)
    t.equal(body.code, 'FST_ERR_VALIDATION', `${name}: code`)
    t.notMatch(body.message, /must be equal to constant|anyOf|additional properties|fewer than|\^\[|body\/|'/, `${name}: none of Ajv's wording`)
    t.notMatch(body.message, /hunter2|correct horse/, `${name}: no password in the message`)
  }
  // Nothing was changed by the refused PATCHes: the old password still logs in.
  const again = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })
  t.equal(again.statusCode, 200, 'the refused password change changed nothing')
})

t.test('the compat routes give the same messages, in their seeds\' shapes', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const put = await message(app, { method: 'PUT', url: '/user', headers: u.auth, payload: {} })
  t.equal(put.status, 400)
  t.same(put.body, { message: 'Nothing to change: give username and/or password' })
  const freshToken = (await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: u.username, password: PASSWORD } })).json().token
  const pw = await message(app, { method: 'PUT', url: '/user', headers: bearer(freshToken), payload: { password: 'a new long passphrase' } })
  t.same(pw.body, { message: 'current_password is required to change the password' })
  const reg = await message(app, { method: 'POST', url: '/register', payload: { username: 'no spaces allowed', password: PASSWORD } })
  t.equal(reg.status, 400)
  t.same(reg.body, { msg: 'username must be 3 to 64 characters of A-Z a-z 0-9 . _ -' })
  const extra = await message(app, { method: 'POST', url: '/login', payload: { username: u.username, password: PASSWORD, remember: true } })
  t.same(extra.body, { msg: 'Unknown field "remember" in the body; allowed: username, password' })
})

t.test('415 says to send JSON, on the service API and the compat routes alike', async (t) => {
  const app = await build(t)
  const expected = 'Unsupported Content-Type: send the body as JSON, with Content-Type: application/json'
  for (const [url, type] of [['/auth/login', 'text/plain'], ['/auth/register', 'application/x-www-form-urlencoded'], ['/login', 'text/plain'], ['/authenticate_user', 'application/xml']]) {
    const { status, body } = await message(app, { method: 'POST', url, headers: { 'content-type': type }, payload: 'username=a&password=b' })
    t.equal(status, 415, `${url} (${type})`)
    t.same(keysOf(body), ERROR_KEYS, `${url}: the common shape, as on every route`)
    t.equal(body.message, expected, `${url}: the message says what to send`)
  }
})

t.test('an Authorization header without "Bearer " says so, instead of "Invalid or expired token"', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const token = u.tokens.access_token
  const expected = 'Authorization header must be "Bearer <access token>"'
  for (const header of [token, `Token ${token}`, `JWT ${token}`, 'Bearer ', 'Basic dXNlcjpwYXNz']) {
    const res = await app.inject({ url: '/users/me', headers: { authorization: header } })
    t.equal(res.statusCode, 401, `${header.slice(0, 12)}...: 401`)
    t.equal(res.json().message, expected, `${header.slice(0, 12)}...: names the scheme`)
    t.equal(res.headers['www-authenticate'], 'Bearer')
  }
  const tpl = await app.inject({ url: '/protected', headers: { authorization: token } })
  t.same([tpl.statusCode, tpl.json()], [401, { msg: expected }], 'the 001 compat route says it too, in {msg}')
  // The other refusals keep their own messages.
  t.equal((await app.inject({ url: '/users/me' })).json().message, 'Missing bearer token')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(`${token}x`) })).json().message, 'Invalid or expired token')
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `bearer ${token}` } })).statusCode, 200, 'the scheme is case-insensitive')
})

t.test('a known path called with another method is 405 with Allow; an unknown one stays 404', async (t) => {
  const app = await build(t)
  const cases: Array<[string, string, string]> = [
    ['PUT', '/auth/login', 'POST'],
    ['GET', '/auth/login', 'POST'],
    ['GET', '/auth/logout', 'POST'],
    ['POST', '/users/me', 'DELETE, GET, HEAD, PATCH'],
    ['DELETE', '/users/me/sessions', 'GET, HEAD'],
    ['GET', '/users/me/sessions/0b7e5a52-3c1f-4a8e-9d27-6f1f2c9e8b41', 'DELETE'],
    ['POST', '/health', 'GET, HEAD'],
    // compat routes: one path, several seeds' methods
    ['PATCH', '/user', 'DELETE, GET, HEAD, POST, PUT'],
    ['GET', '/logout', 'DELETE, POST'],
    ['POST', '/protected', 'GET, HEAD'],
    ['GET', '/validate_token', 'POST']
  ]
  for (const [method, url, allow] of cases) {
    const res = await app.inject({ method: method as 'GET', url })
    t.equal(res.statusCode, 405, `${method} ${url}`)
    t.equal(res.headers.allow, allow, `${method} ${url}: Allow`)
    t.same(keysOf(res.json()), ERROR_KEYS, `${method} ${url}: the common shape`)
    t.equal(res.json().message, `Method ${method} is not allowed on ${url}; it takes ${allow}`)
    t.equal(res.headers['cache-control'], 'no-store')
  }
  const unknown = await app.inject({ method: 'GET', url: '/nope' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().message, 'Route GET /nope not found; the API is described at /docs')

  const plain = await build(t, { COMPAT_ROUTES: 'false' })
  t.equal((await plain.inject({ method: 'PATCH', url: '/user' })).statusCode, 404, 'without the compat routes /user is unknown')
})

t.test('GET / points to the documentation, which is there', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), {
    message: 'auth-service: the API is described at /docs (Swagger UI) and /docs/json (OpenAPI 3)',
    docs: '/docs',
    openapi: '/docs/json'
  })
  t.ok([200, 302].includes((await app.inject({ url: res.json().docs })).statusCode), '/docs answers')
  t.equal((await app.inject({ url: res.json().openapi })).statusCode, 200, '/docs/json answers')
})

t.test('the token is checked before the body: a revoked or orphaned token with a bad body is 401, never 400', async (t) => {
  const app = await build(t)
  const revokedUser = await newUser(app)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: revokedUser.auth })).statusCode, 204)
  const forged = bearer(`${revokedUser.tokens.access_token.slice(0, -2)}xx`)
  const gone = await newUser(app)
  const goneAuth = bearer((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: gone.username, password: PASSWORD } })).json().access_token)
  // Delete the user while leaving the token's session unrevoked in the blocklist: the user check is what must refuse it.
  await app.usersRepository.delete(gone.id, Date.now())

  const bad: Array<[string, string, unknown]> = [
    ['POST', '/auth/logout', { scope: 'nope' }],
    ['POST', '/auth/logout', '{"scope":'],
    ['PATCH', '/users/me', {}],
    ['PATCH', '/users/me', { username: 'x' }],
    ['DELETE', `/users/me/sessions/${'a'.repeat(65)}`, undefined]
  ]
  for (const [name, auth, expected] of [['revoked', revokedUser.auth, 'Token has been revoked'], ['forged', forged, 'Invalid or expired token'], ['user deleted', goneAuth, 'User no longer exists']] as const) {
    for (const [method, url, payload] of bad) {
      const res = await app.inject({
        method: method as 'POST',
        url,
        headers: { ...auth, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
        payload: payload === undefined ? undefined : typeof payload === 'string' ? payload : JSON.stringify(payload)
      })
      t.equal(res.statusCode, 401, `${name} token, ${method} ${url} ${JSON.stringify(payload) ?? ''}: 401`)
      t.equal(res.json().message, expected, `${name}: says why`)
    }
  }
  // The compat logout with a token header and a wrong content type: the token first there too.
  const tpl = await app.inject({ method: 'DELETE', url: '/logout', headers: { ...revokedUser.auth, 'content-type': 'text/plain' }, payload: 'x' })
  t.equal(tpl.statusCode, 401, 'DELETE /logout: a revoked token is refused before its body is looked at')
})

t.test('a path segment over maxParamLength: 414 in the contract\'s shape, headers included, as documented', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const url = `/users/me/sessions/${'a'.repeat(201)}`
  for (const headers of [u.auth, {}]) {
    const res = await app.inject({ method: 'DELETE', url, headers })
    t.equal(res.statusCode, 414, 'refused before the token is read')
    t.same(res.json(), {
      statusCode: 414,
      error: 'URI Too Long',
      message: 'A path segment is too long (at most 200 characters)',
      code: 'FST_ERR_MAX_PARAM_LENGTH'
    })
    t.notMatch(res.body, 'aaaaaaaaaa', 'the path is not echoed')
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers['x-content-type-options'], 'nosniff')
  }
  // The document says so, and the body fits the schema it gives.
  const doc = (await app.inject({ url: '/docs/json' })).json()
  const op = doc.paths['/users/me/sessions/{id}'].delete
  for (const status of ['400', '414']) t.ok(op.responses[status]?.description, `${status} is documented`)
  const ajv = new Ajv({ strict: false })
  ajv.addSchema(doc, 'doc')
  const fits = ajv.compile({ $ref: 'doc#/paths/~1users~1me~1sessions~1{id}/delete/responses/414/content/application~1json/schema' })
  const res = await app.inject({ method: 'DELETE', url })
  t.ok(fits(res.json()), '414 body fits its documented schema')
  const badUrl = await app.inject({ method: 'GET', url: '/users/me/sessions/%E0%A4%A' })
  t.same([badUrl.statusCode, badUrl.json().error, badUrl.headers['cache-control']], [400, 'Bad Request', 'no-store'], 'a malformed URL too')
})
