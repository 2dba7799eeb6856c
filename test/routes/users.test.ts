import t from 'tap'
import { build, bearer, login, newUser, PASSWORD, register, uniqueName } from '../helper'

t.test('GET /users/me', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const res = await app.inject({ url: '/users/me', headers: u.auth })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['created_at', 'id', 'updated_at', 'username'])
  t.equal(body.id, u.id)
  t.equal(body.username, u.username)
  t.notMatch(res.body, /password|hash/i, 'no password field or hash leaks')

  for (const [label, headers] of [
    ['no header', {}],
    ['empty bearer', { authorization: 'Bearer ' }],
    ['basic scheme', { authorization: 'Basic dXNlcjpwYXNz' }],
    ['token without scheme', { authorization: u.tokens.access_token }],
    ['refresh token', bearer(u.tokens.refresh_token)]
  ] as Array<[string, Record<string, string>]>) {
    const r = await app.inject({ url: '/users/me', headers })
    t.equal(r.statusCode, 401, label)
    t.equal(r.headers['www-authenticate'], 'Bearer', `${label}: WWW-Authenticate`)
    t.same(Object.keys(r.json()).sort(), ['error', 'message', 'statusCode'])
  }
  const lower = await app.inject({ url: '/users/me', headers: { authorization: `bearer ${u.tokens.access_token}` } })
  t.equal(lower.statusCode, 200, 'the scheme is case-insensitive (RFC 7235)')
  const query = await app.inject({ url: `/users/me?access_token=${u.tokens.access_token}&token=${u.tokens.access_token}` })
  t.equal(query.statusCode, 401, 'never from the query string')
})

t.test('PATCH /users/me', async (t) => {
  const app = await build(t)

  t.test('rename: 200 User, new name works at login, old one is free', async (t) => {
    const u = await newUser(app)
    const newName = uniqueName('Renamed')
    const res = await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { username: newName } })
    t.equal(res.statusCode, 200)
    t.equal(res.json().username, newName)
    t.ok(res.json().updated_at >= res.json().created_at)
    await login(app, newName.toLowerCase())
    await register(app, u.username) // the old name is free again
  })

  t.test('rename to a taken name (any case): 409, nothing changed', async (t) => {
    const u = await newUser(app)
    const other = await newUser(app)
    const res = await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { username: other.username.toUpperCase() } })
    t.equal(res.statusCode, 409)
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).json().username, u.username)
  })

  t.test('rename to a different case of my own name is allowed', async (t) => {
    const u = await newUser(app)
    const res = await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { username: u.username.toUpperCase() } })
    t.equal(res.statusCode, 200)
    t.equal(res.json().username, u.username.toUpperCase())
  })

  t.test('password change: needs current_password, revokes other sessions, keeps this one', async (t) => {
    const u = await newUser(app)
    const other = await login(app, u.username)
    const newPassword = 'a brand new passphrase'

    const missing = await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { password: newPassword } })
    t.equal(missing.statusCode, 400, 'no current_password')
    const wrong = await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { password: newPassword, current_password: 'not it at all' } })
    t.equal(wrong.statusCode, 403, 'wrong current_password')
    t.notMatch(wrong.body, /not it at all|brand new/)
    t.equal((await app.inject({ url: '/users/me', headers: bearer(other.access_token) })).statusCode, 200, 'failed attempts revoked nothing')

    const ok = await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { password: newPassword, current_password: PASSWORD } })
    t.equal(ok.statusCode, 200)
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 200, 'this session lives on')
    t.equal((await app.inject({ url: '/users/me', headers: bearer(other.access_token) })).statusCode, 401, 'other session revoked at once')
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: other.refresh_token } })).statusCode, 401, 'its refresh token too')
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })).statusCode, 401, 'old password dead')
    await login(app, u.username, newPassword)
  })

  t.test('a common new password is refused; 400s for bad bodies', async (t) => {
    const u = await newUser(app)
    const bad: Array<[string, unknown]> = [
      ['empty body', {}],
      ['common password', { password: 'password123', current_password: PASSWORD }],
      ['short password', { password: 'short', current_password: PASSWORD }],
      ['bad username', { username: 'no spaces allowed' }],
      ['unknown property', { username: uniqueName(), admin: true }],
      ['only current_password', { current_password: PASSWORD }],
      ['wrong type', { username: 42 }]
    ]
    for (const [label, payload] of bad) {
      const res = await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: payload as object })
      t.equal(res.statusCode, 400, label)
    }
    await login(app, u.username) // nothing was written
  })

  t.test('401 without a token', async (t) => {
    t.equal((await app.inject({ method: 'PATCH', url: '/users/me', payload: { username: uniqueName() } })).statusCode, 401)
  })
})

t.test('DELETE /users/me', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const other = await login(app, u.username)
  const res = await app.inject({ method: 'DELETE', url: '/users/me', headers: u.auth })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401, 'this token dead')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(other.access_token) })).statusCode, 401, 'every token dead')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: other.refresh_token } })).statusCode, 401, 'refresh tokens dead')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })).statusCode, 401, 'cannot log in')
  t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: u.auth })).statusCode, 401, 'twice: 401')
  const again = await app.inject({ method: 'POST', url: '/auth/register', payload: { username: u.username, password: PASSWORD } })
  t.equal(again.statusCode, 201, 'the username is free')
  t.not(again.json().id, u.id)
  t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401, 'old tokens do not reach the new account')
})

t.test('/users/me/sessions', async (t) => {
  const app = await build(t)

  t.test('lists active sessions with the current one marked', async (t) => {
    const u = await newUser(app)
    await login(app, u.username)
    const third = await login(app, u.username)
    await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(third.access_token) })
    await newUser(app) // a stranger, whose session must not be listed
    const res = await app.inject({ url: '/users/me/sessions', headers: u.auth })
    t.equal(res.statusCode, 200)
    const list = res.json()
    t.equal(list.length, 2, 'logged-out session and other users are not listed')
    for (const s of list) t.same(Object.keys(s).sort(), ['created_at', 'current', 'expires_at', 'id', 'last_used_at'])
    t.equal(list.filter((s: { current: boolean }) => s.current).length, 1)
    const sid = JSON.parse(Buffer.from(u.tokens.access_token.split('.')[1], 'base64url').toString()).sid
    t.equal(list.find((s: { current: boolean }) => s.current).id, sid)
  })

  t.test('last_used_at moves on refresh', async (t) => {
    const u = await newUser(app)
    const before = (await app.inject({ url: '/users/me/sessions', headers: u.auth })).json()[0]
    await new Promise((resolve) => setTimeout(resolve, 5))
    const next = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.tokens.refresh_token } })).json()
    const after = (await app.inject({ url: '/users/me/sessions', headers: bearer(next.access_token) })).json()[0]
    t.equal(after.id, before.id)
    t.ok(after.last_used_at > before.last_used_at)
  })

  t.test('DELETE one session: 204, its tokens die; 404 for unknown or foreign ids', async (t) => {
    const u = await newUser(app)
    const victim = await login(app, u.username)
    const victimSid = JSON.parse(Buffer.from(victim.access_token.split('.')[1], 'base64url').toString()).sid
    const stranger = await newUser(app)
    const strangerSid = JSON.parse(Buffer.from(stranger.tokens.access_token.split('.')[1], 'base64url').toString()).sid

    t.equal((await app.inject({ method: 'DELETE', url: `/users/me/sessions/${strangerSid}`, headers: u.auth })).statusCode, 404, 'another user\'s session')
    t.equal((await app.inject({ url: '/users/me', headers: stranger.auth })).statusCode, 200, 'and it was not touched')
    t.equal((await app.inject({ method: 'DELETE', url: '/users/me/sessions/00000000-0000-0000-0000-000000000000', headers: u.auth })).statusCode, 404)

    const res = await app.inject({ method: 'DELETE', url: `/users/me/sessions/${victimSid}`, headers: u.auth })
    t.equal(res.statusCode, 204)
    t.equal((await app.inject({ url: '/users/me', headers: bearer(victim.access_token) })).statusCode, 401)
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: victim.refresh_token } })).statusCode, 401)
    t.equal((await app.inject({ method: 'DELETE', url: `/users/me/sessions/${victimSid}`, headers: u.auth })).statusCode, 404, 'already revoked')
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 200)
  })

  t.test('401 without a token', async (t) => {
    t.equal((await app.inject({ url: '/users/me/sessions' })).statusCode, 401)
    t.equal((await app.inject({ method: 'DELETE', url: '/users/me/sessions/x' })).statusCode, 401)
  })
})

t.test('every private route answers 401 without a token', async (t) => {
  const app = await build(t)
  const routes: Array<[string, string]> = [
    ['GET', '/users/me'], ['PATCH', '/users/me'], ['DELETE', '/users/me'],
    ['GET', '/users/me/sessions'], ['DELETE', '/users/me/sessions/abc'], ['POST', '/auth/logout']
  ]
  for (const [method, url] of routes) {
    const res = await app.inject({ method: method as 'GET', url, payload: method === 'GET' || method === 'DELETE' ? undefined : {} })
    t.equal(res.statusCode, 401, `${method} ${url}`)
  }
})
