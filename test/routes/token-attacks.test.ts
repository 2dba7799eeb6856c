import t from 'tap'
import { build, bearer, newUser, TEST_SECRET } from '../helper'
import { b64, forge, GOOD_HEADER, hmac, parts } from '../jwt-forge'

// SECURITY.md part A, over HTTP: every forged or damaged token is a 401 (never a 5xx),
// on the route protected by the autohook and on the route that opts in (logout).
t.test('access-token attacks over HTTP', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const real = parts(u.tokens.access_token)
  const now = Math.floor(Date.now() / 1000)
  const claims = (o: Record<string, unknown> = {}) => ({ ...real.payload, ...o })

  const sanity = forge(GOOD_HEADER, claims(), TEST_SECRET)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(sanity) })).statusCode, 200, 'a token forged with the real key is accepted (the forge is right)')

  const attacks: Record<string, string> = {
    'alg none': `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims())}.`,
    'alg NONE': `${b64({ alg: 'NONE', typ: 'at+jwt' })}.${b64(claims())}.`,
    'alg nOnE with signature': forge({ alg: 'nOnE', typ: 'at+jwt' }, claims(), TEST_SECRET),
    'stripped signature': `${real.h}.${real.p}.`,
    'empty signature and no dot': `${real.h}.${real.p}`,
    'HS384 with our key': forge({ alg: 'HS384', typ: 'at+jwt' }, claims(), TEST_SECRET, 'HS384'),
    'HS512 with our key': forge({ alg: 'HS512', typ: 'at+jwt' }, claims(), TEST_SECRET, 'HS512'),
    'RS256 header': forge({ alg: 'RS256', typ: 'at+jwt' }, claims(), TEST_SECRET),
    'ES256 header': forge({ alg: 'ES256', typ: 'at+jwt' }, claims(), TEST_SECRET),
    'PS256 header': forge({ alg: 'PS256', typ: 'at+jwt' }, claims(), TEST_SECRET),
    'EdDSA header': forge({ alg: 'EdDSA', typ: 'at+jwt' }, claims(), TEST_SECRET),
    'wrong key': forge(GOOD_HEADER, claims(), 'another-secret-that-is-long-enough-000'),
    'jwk in header': forge({ ...GOOD_HEADER, jwk: { kty: 'oct', k: b64('k') } }, claims(), 'k'),
    'jku in header': forge({ ...GOOD_HEADER, jku: 'http://127.0.0.1:1/jwks' }, claims(), TEST_SECRET),
    'x5u in header': forge({ ...GOOD_HEADER, x5u: 'http://127.0.0.1:1/x5u' }, claims(), TEST_SECRET),
    'x5c in header': forge({ ...GOOD_HEADER, x5c: ['MIIB'] }, claims(), TEST_SECRET),
    'kid path traversal': forge({ ...GOOD_HEADER, kid: '../../../../../../dev/null' }, claims(), ''),
    'kid sql': forge({ ...GOOD_HEADER, kid: "x' UNION SELECT 'key" }, claims(), 'key'),
    'unknown crit': forge({ ...GOOD_HEADER, crit: ['urn:example:unknown'] }, claims(), TEST_SECRET),
    'typ JWT': forge({ alg: 'HS256', typ: 'JWT' }, claims(), TEST_SECRET),
    'no typ': forge({ alg: 'HS256' }, claims(), TEST_SECRET),
    'typ refresh': forge({ alg: 'HS256', typ: 'refresh+jwt' }, claims(), TEST_SECRET),
    'tampered payload, old signature': `${real.h}.${b64(claims({ sub: '00000000-0000-0000-0000-000000000000' }))}.${real.s}`,
    expired: forge(GOOD_HEADER, claims({ exp: now - 10, iat: now - 1000 }), TEST_SECRET),
    'future nbf': forge(GOOD_HEADER, claims({ nbf: now + 3600 }), TEST_SECRET),
    'missing sub': forge(GOOD_HEADER, claims({ sub: undefined }), TEST_SECRET),
    'missing sid': forge(GOOD_HEADER, claims({ sid: undefined }), TEST_SECRET),
    'missing jti': forge(GOOD_HEADER, claims({ jti: undefined }), TEST_SECRET),
    'missing exp': forge(GOOD_HEADER, claims({ exp: undefined }), TEST_SECRET),
    'missing iat': forge(GOOD_HEADER, claims({ iat: undefined }), TEST_SECRET),
    'wrong iss': forge(GOOD_HEADER, claims({ iss: 'evil' }), TEST_SECRET),
    'wrong aud': forge(GOOD_HEADER, claims({ aud: 'evil' }), TEST_SECRET),
    'iss as array': forge(GOOD_HEADER, claims({ iss: ['auth-service', 'evil'] }), TEST_SECRET),
    'aud as array': forge(GOOD_HEADER, claims({ aud: ['evil', 'auth-service'] }), TEST_SECRET),
    'two segments': `${real.h}.${real.p}`,
    'four segments': `${u.tokens.access_token}.${real.s}`,
    'bad base64url': `${real.h}.${real.p}*.${real.s}`,
    'padding on payload': `${real.h}.${real.p}==.${real.s}`,
    'padding on signature': `${real.h}.${real.p}.${real.s}=`,
    'payload a JSON array': forge(GOOD_HEADER, [claims()], TEST_SECRET),
    'payload a JSON string': forge(GOOD_HEADER, 'just a string', TEST_SECRET),
    '8 KiB header': forge({ ...GOOD_HEADER, junk: 'x'.repeat(8192) }, claims(), TEST_SECRET),
    'whitespace-prefixed': ` ${u.tokens.access_token}`,
    'header not canonical JSON': (() => {
      const input = `${b64('{ "alg":"HS256","typ":"at+jwt" }')}.${real.p}`
      return `${input}.${hmac('HS256', TEST_SECRET, input)}`
    })(),
    'refresh token as bearer': u.tokens.refresh_token
  }

  for (const [name, token] of Object.entries(attacks)) {
    for (const [method, url] of [['GET', '/users/me'], ['POST', '/auth/logout']] as const) {
      const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` } })
      t.equal(res.statusCode, 401, `${name}: ${method} ${url}`)
      t.notMatch(res.body, token.slice(-20) || '<empty>', `${name}: the token is not echoed`)
    }
    const intro = await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token } })
    t.same(intro.json(), { active: false }, `${name}: introspection says inactive`)
  }

  t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 200, 'after all that, the real token still works (nothing was revoked by the attacks)')
})

t.test('revocation: a revoked jti and a revoked sid are refused at once', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const sibling = await newUser(app)
  const claims = app.tokens.verifyAccessToken(u.tokens.access_token)!
  await app.sessions.revokeAccessToken(claims)
  t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401, 'revoked jti')
  const fresh = app.tokens.signAccessToken(u.id, claims.sid)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(fresh.token) })).statusCode, 200, 'the session itself lives: a new jti in it passes')

  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(fresh.token) })
  const afterLogout = app.tokens.signAccessToken(u.id, claims.sid)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(afterLogout.token) })).statusCode, 401, 'any token of a revoked sid, even one minted later')
  t.equal((await app.inject({ url: '/users/me', headers: sibling.auth })).statusCode, 200)
})

t.test('a token whose user no longer exists is 401 on every protected route', async (t) => {
  const app = await build(t)
  const ghost = app.tokens.signAccessToken('00000000-0000-4000-8000-000000000000', '00000000-0000-4000-8000-000000000001')
  for (const [method, url] of [['GET', '/users/me'], ['PATCH', '/users/me'], ['DELETE', '/users/me'], ['GET', '/users/me/sessions'], ['DELETE', '/users/me/sessions/x'], ['POST', '/auth/logout']] as const) {
    const res = await app.inject({ method, url, headers: bearer(ghost.token), payload: method === 'PATCH' ? { username: 'ghostname' } : undefined })
    t.equal(res.statusCode, 401, `${method} ${url}`)
  }
})
