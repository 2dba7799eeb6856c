import t from 'tap'
import { PASSWORD, startServer, uniqueName } from '../helper'

// The two seeds' client flows over real HTTP against the built server (npm run build first).

async function call (base: string, method: string, path: string, opts: { body?: unknown, token?: string } = {}) {
  const headers: Record<string, string> = {}
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  const res = await fetch(base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) }
}

t.test('both seeds\' flows, and tokens across surfaces, over HTTP', async (t) => {
  const { url } = await startServer(t)

  // 001, as its README's curl session: register, login, protected, logout.
  const tpl = { username: uniqueName('curl'), password: PASSWORD }
  const reg = await call(url, 'POST', '/register', { body: tpl })
  t.equal(reg.status, 201)
  t.same(reg.body, { msg: 'User registered successfully' })
  t.equal((await call(url, 'POST', '/register', { body: tpl })).status, 409)
  const login = await call(url, 'POST', '/login', { body: tpl })
  t.equal(login.status, 200)
  t.equal(login.headers.get('cache-control'), 'no-store')
  const { access_token: access } = login.body
  for (let i = 0; i < 2; i++) {
    const prot = await call(url, 'GET', '/protected', { token: access })
    t.same([prot.status, prot.body], [200, { logged_in_as: tpl.username }], '001 tokens are not renewed on use')
  }
  const out = await call(url, 'DELETE', '/logout', { token: access })
  t.same([out.status, out.body], [200, { msg: 'Successfully logged out' }])
  const dead = await call(url, 'GET', '/protected', { token: access })
  t.equal(dead.status, 401)
  t.same(Object.keys(dead.body), ['msg'])
  t.equal((await call(url, 'POST', '/login', { body: { ...tpl, password: 'wrong password' } })).body.msg, 'Bad username or password')

  // 000: create, authenticate, validate, get, update, delete, logout, with renewal.
  const demo = { username: uniqueName('demo'), password: PASSWORD }
  t.same((await call(url, 'POST', '/user', { body: demo })).body, { message: 'User created successfully' })
  const auth = await call(url, 'POST', '/authenticate_user', { body: demo })
  t.equal(auth.status, 200)
  t.equal(auth.body.token, auth.body.access_token)
  const unknown = await call(url, 'POST', '/authenticate_user', { body: { username: uniqueName('nobody'), password: PASSWORD } })
  t.same([unknown.status, unknown.body], [401, { error: 'Invalid credentials' }], 'no 404 for unknown users')

  const valid = await call(url, 'POST', '/validate_token', { body: { token: auth.body.token } })
  t.equal(valid.body.message, 'Token is valid')
  const replay = await call(url, 'POST', '/validate_token', { body: { token: auth.body.token } })
  t.same([replay.status, replay.body], [401, { message: 'Invalid or expired token' }], 'a used token is refused')
  const got = await call(url, 'GET', '/user', { token: valid.body.token })
  t.equal(got.body.user.username, demo.username)
  t.equal((await call(url, 'GET', '/user', { token: valid.body.token })).status, 401, 'GET /user replay')
  const put = await call(url, 'PUT', '/user', { token: got.body.token, body: { password: 'a different passphrase', current_password: PASSWORD } })
  t.equal(put.body.message, 'User updated successfully')
  t.equal((await call(url, 'POST', '/authenticate_user', { body: demo })).status, 401, 'old password refused')
  const viaBearer = await call(url, 'POST', '/validate_token', { token: put.body.token })
  t.equal(viaBearer.status, 200, 'validate_token reads Authorization: Bearer')
  const missing = await call(url, 'GET', '/user')
  t.same([missing.status, missing.body], [401, { message: 'Token is missing' }])

  // Across surfaces: the 000 user logs in on 001 and on the service API; tokens work everywhere.
  const moved = { username: demo.username, password: 'a different passphrase' }
  const tplToken = (await call(url, 'POST', '/login', { body: moved })).body.access_token
  t.equal((await call(url, 'GET', '/users/me', { token: tplToken })).body.id, got.body.user.id)
  const apiToken = (await call(url, 'POST', '/auth/login', { body: moved })).body.access_token
  t.equal((await call(url, 'GET', '/protected', { token: apiToken })).status, 200)
  t.equal((await call(url, 'GET', '/user', { token: apiToken })).status, 200)

  const logout = await call(url, 'POST', '/logout', { body: { token: viaBearer.body.token } })
  t.same([logout.status, logout.body], [200, { message: 'Logged out successfully' }])
  t.equal((await call(url, 'POST', '/validate_token', { body: { token: viaBearer.body.token } })).status, 401, 'dead after logout')

  const del = await call(url, 'DELETE', '/user', { token: tplToken })
  t.same([del.status, del.body], [200, { message: 'User deleted successfully' }])
  t.equal((await call(url, 'GET', '/users/me', { token: tplToken })).status, 401, 'every token of a deleted user is dead')
  t.equal((await call(url, 'POST', '/auth/login', { body: moved })).status, 401)
})

t.test('COMPAT_ROUTES=false over HTTP: every compat route is a 404', async (t) => {
  const { url } = await startServer(t, { COMPAT_ROUTES: 'false' })
  const body = { username: uniqueName('off'), password: PASSWORD }
  for (const [method, path] of [
    ['POST', '/register'], ['POST', '/login'], ['GET', '/protected'], ['DELETE', '/logout'],
    ['POST', '/user'], ['POST', '/authenticate_user'], ['POST', '/validate_token'],
    ['GET', '/user'], ['PUT', '/user'], ['DELETE', '/user'], ['POST', '/logout']
  ] as const) {
    const res = await call(url, method, path, method === 'GET' || method === 'DELETE' ? {} : { body })
    t.equal(res.status, 404, `${method} ${path}`)
    t.equal(res.body.statusCode, 404)
  }
  t.equal((await call(url, 'POST', '/auth/register', { body })).status, 201, 'the service API still answers')
})
