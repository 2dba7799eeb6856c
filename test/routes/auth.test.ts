import t from 'tap'
import { build, bearer, login, newUser, PASSWORD, register, uniqueName } from '../helper'

const ERROR_KEYS = ['error', 'message', 'statusCode']
const keysOf = (o: object) => Object.keys(o).filter((k) => k !== 'code').sort()

t.test('POST /auth/register', async (t) => {
  const app = await build(t)

  t.test('201 with id, username as written, created_at', async (t) => {
    const name = uniqueName('Alice')
    const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { username: name, password: PASSWORD } })
    t.equal(res.statusCode, 201)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['created_at', 'id', 'username'])
    t.equal(body.username, name)
    t.match(body.id, /^[0-9a-f-]{36}$/)
    t.equal(new Date(body.created_at).toISOString(), body.created_at)
    t.notMatch(res.body, /hash|\$2[aby]\$/)
  })

  t.test('409 for a taken username, case-insensitively; nothing written', async (t) => {
    const name = uniqueName('Bob')
    await register(app, name)
    for (const variant of [name, name.toLowerCase(), name.toUpperCase()]) {
      const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { username: variant, password: 'another long password' } })
      t.equal(res.statusCode, 409, variant)
      t.same(keysOf(res.json()), ERROR_KEYS)
    }
    // the original password still works: the 409s changed nothing
    await login(app, name.toLowerCase())
  })

  t.test('400 for every bad body, and nothing is written', async (t) => {
    const name = uniqueName()
    const bad: Array<[string, unknown]> = [
      ['missing password', { username: name }],
      ['missing username', { password: PASSWORD }],
      ['username too short', { username: 'ab', password: PASSWORD }],
      ['username too long', { username: 'a'.repeat(65), password: PASSWORD }],
      ['username bad characters', { username: 'bad name!', password: PASSWORD }],
      ['username with slash', { username: 'a/b/c', password: PASSWORD }],
      ['password too short', { username: name, password: 'short' }],
      ['password a number', { username: name, password: 12345678 }],
      ['username a number', { username: 12345, password: PASSWORD }],
      ['unknown property', { username: name, password: PASSWORD, admin: true }],
      ['common password', { username: name, password: 'password123' }],
      ['password of 1 MB', { username: name, password: 'x'.repeat(5000) }],
      ['array body', [name, PASSWORD]],
      ['null password', { username: name, password: null }]
    ]
    for (const [label, payload] of bad) {
      const res = await app.inject({ method: 'POST', url: '/auth/register', payload: payload as object })
      t.equal(res.statusCode, 400, label)
      t.same(keysOf(res.json()), ERROR_KEYS, `${label}: error shape`)
      t.notMatch(res.body, new RegExp(PASSWORD), `${label}: the password is not echoed`)
    }
    const probe = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: name, password: PASSWORD } })
    t.equal(probe.statusCode, 401, 'no account was created by any of them')
  })

  t.test('a username that only differs in case is the same account at login', async (t) => {
    const name = uniqueName('MiXeD')
    await register(app, name)
    const pair = await login(app, name.toUpperCase())
    const me = await app.inject({ url: '/users/me', headers: bearer(pair.access_token) })
    t.equal(me.json().username, name, 'returned as first written')
  })
})

t.test('POST /auth/login', async (t) => {
  const app = await build(t)
  const user = await register(app)

  t.test('200 TokenPair with no-store', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: PASSWORD } })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'])
    t.equal(body.token_type, 'Bearer')
    t.equal(body.expires_in, 900)
    t.ok(body.refresh_expires_in > 2591000 && body.refresh_expires_in <= 2592000)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.notOk(res.headers['x-powered-by'])
    const [h, p] = body.access_token.split('.')
    t.same(JSON.parse(Buffer.from(h, 'base64url').toString()), { alg: 'HS256', typ: 'at+jwt' })
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
    t.same(Object.keys(claims).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub'])
    t.equal(claims.sub, user.id)
    t.equal(claims.exp - claims.iat, 900)
    t.ok(Buffer.from(body.refresh_token, 'base64url').length >= 32, 'refresh token has 256 bits')
  })

  t.test('every login gets a fresh jti and sid', async (t) => {
    const a = await login(app, user.username)
    const b = await login(app, user.username)
    const claim = (tok: string) => JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString())
    t.not(claim(a.access_token).jti, claim(b.access_token).jti)
    t.not(claim(a.access_token).sid, claim(b.access_token).sid)
    t.not(a.refresh_token, b.refresh_token)
  })

  t.test('unknown user and wrong password: the same 401, body and headers', async (t) => {
    const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: 'not the password' } })
    const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: uniqueName('ghost'), password: 'not the password' } })
    t.equal(wrong.statusCode, 401)
    t.equal(unknown.statusCode, 401)
    t.same(wrong.json(), { statusCode: 401, error: 'Unauthorized', message: 'Invalid username or password' })
    t.same(unknown.json(), wrong.json())
    const headerNames = (h: Record<string, unknown>) => Object.keys(h).filter((k) => k !== 'date').sort()
    t.same(headerNames(unknown.headers), headerNames(wrong.headers))
  })

  t.test('passwords compared exactly', async (t) => {
    for (const attempt of [PASSWORD.toUpperCase(), ` ${PASSWORD}`, `${PASSWORD} `, `${PASSWORD}\u0000`, PASSWORD.slice(0, -1)]) {
      const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: attempt } })
      t.equal(res.statusCode, 401, JSON.stringify(attempt))
    }
  })

  t.test('400 for a malformed body', async (t) => {
    for (const payload of [{}, { username: user.username }, { username: user.username, password: PASSWORD, remember: true }, { username: ['a'], password: PASSWORD }]) {
      const res = await app.inject({ method: 'POST', url: '/auth/login', payload })
      t.equal(res.statusCode, 400, JSON.stringify(payload))
    }
  })
})

t.test('POST /auth/refresh', async (t) => {
  const app = await build(t)

  t.test('rotates: a new pair, the old refresh token stops working', async (t) => {
    const u = await newUser(app)
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['cache-control'], 'no-store')
    const next = res.json()
    t.not(next.refresh_token, u.tokens.refresh_token)
    t.not(next.access_token, u.tokens.access_token)
    const me = await app.inject({ url: '/users/me', headers: bearer(next.access_token) })
    t.equal(me.statusCode, 200)
    const again = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: next.refresh_token } })
    t.equal(again.statusCode, 200, 'the new one works')
  })

  t.test('reuse of a rotated token revokes the whole session', async (t) => {
    const u = await newUser(app)
    const first = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })).json()
    const reuse = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })
    t.equal(reuse.statusCode, 401)
    t.same(Object.keys(reuse.json()).sort(), ERROR_KEYS)
    // the thief's (or the user's) newer tokens die with the session
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first.refresh_token } })).statusCode, 401, 'new refresh token revoked')
    t.equal((await app.inject({ url: '/users/me', headers: bearer(first.access_token) })).statusCode, 401, 'new access token revoked')
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401, 'original access token revoked')
    // other sessions of the same user are untouched
    const other = await login(app, u.username)
    t.equal((await app.inject({ url: '/users/me', headers: bearer(other.access_token) })).statusCode, 200)
  })

  t.test('of 10 parallel refreshes of one token at most one succeeds', async (t) => {
    const u = await newUser(app)
    const results = await Promise.all(Array.from({ length: 10 }, () =>
      app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })))
    const ok = results.filter((r) => r.statusCode === 200)
    t.ok(ok.length <= 1, `${ok.length} succeeded`)
    t.equal(results.filter((r) => r.statusCode === 401).length, 10 - ok.length)
  })

  t.test('401 for unknown, garbage or access tokens; 400 for bad bodies', async (t) => {
    const u = await newUser(app)
    for (const token of ['nope', 'A'.repeat(43), u.tokens.access_token]) {
      const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
      t.equal(res.statusCode, 401)
      t.notMatch(res.body, token)
    }
    for (const payload of [{}, { refresh_token: '' }, { refresh_token: 5 }, { refresh_token: u.tokens.refresh_token, x: 1 }]) {
      t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload })).statusCode, 400, JSON.stringify(payload))
    }
    // the 400s did not consume the token
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })).statusCode, 200)
  })

  t.test('a refresh token past its absolute expiry is refused', async (t) => {
    const short = await build(t, { ACCESS_TOKEN_TTL: '60', REFRESH_TOKEN_TTL: '60' })
    const u = await newUser(short)
    t.equal(u.tokens.refresh_expires_in, 60)
    const realNow = Date.now
    Date.now = () => realNow() + 61_000
    t.teardown(() => { Date.now = realNow })
    const res = await short.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })
    t.equal(res.statusCode, 401)
  })
})

t.test('POST /auth/logout', async (t) => {
  const app = await build(t)

  t.test('scope session (the default, body omitted): this session only', async (t) => {
    const u = await newUser(app)
    const other = await login(app, u.username)
    const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: u.auth })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401, 'access token dead at once')
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })).statusCode, 401, 'refresh token dead')
    t.equal((await app.inject({ url: '/users/me', headers: bearer(other.access_token) })).statusCode, 200, 'other session alive')
  })

  t.test('an empty JSON body and an explicit scope work too', async (t) => {
    const u = await newUser(app)
    const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: { ...u.auth, 'content-type': 'application/json' }, payload: '' })
    t.equal(res.statusCode, 204)
    const v = await newUser(app)
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: v.auth, payload: { scope: 'session' } })).statusCode, 204)
  })

  t.test('scope all: every session of the user, this one included', async (t) => {
    const u = await newUser(app)
    const other = await login(app, u.username)
    const stranger = await newUser(app)
    const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: u.auth, payload: { scope: 'all' } })
    t.equal(res.statusCode, 204)
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401)
    t.equal((await app.inject({ url: '/users/me', headers: bearer(other.access_token) })).statusCode, 401)
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: other.refresh_token } })).statusCode, 401)
    t.equal((await app.inject({ url: '/users/me', headers: stranger.auth })).statusCode, 200, 'another user is untouched')
    // logging in again works
    await login(app, u.username)
  })

  t.test('401 without a token, with a refresh token, or twice; 400 for a bad scope', async (t) => {
    const u = await newUser(app)
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout' })).statusCode, 401)
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(u.tokens.refresh_token) })).statusCode, 401)
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: u.auth, payload: { scope: 'everything' } })).statusCode, 400)
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 200, 'the 400 revoked nothing')
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: u.auth })).statusCode, 204)
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: u.auth })).statusCode, 401)
  })
})

t.test('POST /auth/introspect', async (t) => {
  const app = await build(t)

  t.test('active token: its claims and username', async (t) => {
    const u = await newUser(app)
    const res = await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token: u.tokens.access_token } })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['active', 'exp', 'iat', 'jti', 'sid', 'sub', 'username'])
    t.equal(body.active, true)
    t.equal(body.sub, u.id)
    t.equal(body.username, u.username)
  })

  t.test('anything not active answers only {active: false}', async (t) => {
    const u = await newUser(app)
    const revoked = await newUser(app)
    await app.inject({ method: 'POST', url: '/auth/logout', headers: revoked.auth })
    const deleted = await newUser(app)
    await app.inject({ method: 'DELETE', url: '/users/me', headers: deleted.auth })
    for (const [label, token] of [
      ['garbage', 'garbage'],
      ['empty', ''],
      ['refresh token', u.tokens.refresh_token],
      ['revoked', revoked.tokens.access_token],
      ['deleted user', deleted.tokens.access_token],
      ['tampered', u.tokens.access_token.slice(0, -2) + 'AA']
    ]) {
      const res = await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token } })
      t.equal(res.statusCode, 200, label)
      t.same(res.json(), { active: false }, label)
    }
  })

  t.test('400 for a bad body; never reads a token from the query string', async (t) => {
    const u = await newUser(app)
    t.equal((await app.inject({ method: 'POST', url: '/auth/introspect', payload: {} })).statusCode, 400)
    t.equal((await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token: 5 } })).statusCode, 400)
    const q = await app.inject({ method: 'POST', url: `/auth/introspect?token=${u.tokens.access_token}`, payload: {} })
    t.equal(q.statusCode, 400)
  })
})
