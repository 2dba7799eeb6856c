import t from 'tap'
import { build, bearer, login, newUser, TEST_SECRET } from '../helper'
import { b64, forge, GOOD_HEADER, hmac, parts } from '../jwt-forge'
import { ACCESS_TOKEN_HEADER } from '../../src/tokens/hs256-verifier'

// docs/api.md "What every verifier checks", over HTTP: every forged or damaged token is a 401 (never a 5xx),
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
  const claims = (await app.tokens.verifyAccessToken(u.tokens.access_token))!
  await app.sessions.renewAccessToken(claims)
  t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401, 'revoked jti')
  const fresh = app.tokens.signAccessToken(u.id, claims.sid)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(fresh.token) })).statusCode, 200, 'the session itself lives: a new jti in it passes')

  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(fresh.token) })
  const afterLogout = app.tokens.signAccessToken(u.id, claims.sid)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(afterLogout.token) })).statusCode, 401, 'any token of a revoked sid, even one minted later')
  t.equal((await app.inject({ url: '/users/me', headers: sibling.auth })).statusCode, 200)
})

t.test('one signing path: access tokens are what @fastify/jwt signs, over the header the verifier pins', async (t) => {
  const app = await build(t)
  const iat = Math.floor(Date.now() / 1000)
  const sub = '00000000-0000-4000-8000-00000000000a'
  const sid = '00000000-0000-4000-8000-00000000000b'
  const signed = app.tokens.signAccessToken(sub, sid, iat)
  t.equal(signed.token, app.jwt.sign({ sub, sid, jti: signed.jti, iat }), 'the same text as fastify.jwt.sign gives')
  t.equal(parts(signed.token).h, ACCESS_TOKEN_HEADER, 'the header the HS256 verifier requires')
  t.same(parts(signed.token).header, GOOD_HEADER)
  t.equal(signed.exp, iat + app.config.accessTokenTtl, 'exp = iat + TTL')
  t.same(await app.tokens.verifyAccessToken(signed.token), { sub, sid, jti: signed.jti, iat, exp: signed.exp }, 'and it verifies')
})

t.test('a token whose user no longer exists is 401 on every protected route', async (t) => {
  const app = await build(t)
  const ghost = app.tokens.signAccessToken('00000000-0000-4000-8000-000000000000', '00000000-0000-4000-8000-000000000001')
  for (const [method, url] of [['GET', '/users/me'], ['PATCH', '/users/me'], ['DELETE', '/users/me'], ['GET', '/users/me/sessions'], ['DELETE', '/users/me/sessions/x'], ['POST', '/auth/logout']] as const) {
    const res = await app.inject({ method, url, headers: bearer(ghost.token), payload: method === 'PATCH' ? { username: 'ghostname' } : undefined })
    t.equal(res.statusCode, 401, `${method} ${url}`)
  }
})

// A character swapped for a non-ASCII one whose low byte is the original (U+0130 for '0',
// U+0100 + c for any c): a latin1 view of the text cannot tell them apart, the verifier must.
// Each variant is refused on the bearer route, by introspection and by the compat
// /validate_token (which revokes the token it accepts: the original must survive all of it).
t.test('non-ASCII look-alikes of a valid token are refused everywhere, and leave it working', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  // U+0130 replaces a '0'; log in again until the signature has one (about every other token).
  let token = u.tokens.access_token
  for (let i = 0; i < 40 && !token.split('.')[2].includes('0'); i++) token = (await login(app, u.username)).access_token
  const { h, p, s } = parts(token)
  t.ok(s.includes('0'), 'a signature with a 0 in it')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(token) })).statusCode, 200, 'the token is valid')

  const swap = (text: string, at: number, ch: string) => text.slice(0, at) + ch + text.slice(at + 1)
  const lookAlike = (text: string, at: number, plane = 0x100) => swap(text, at, String.fromCharCode(plane + text.charCodeAt(at)))
  const variants: Record<string, string> = {
    'signature: U+0130 for a 0': `${h}.${p}.${swap(s, s.indexOf('0'), '\u0130')}`,
    'signature: first char + 0x100': `${h}.${p}.${lookAlike(s, 0)}`,
    'signature: middle char + 0x100': `${h}.${p}.${lookAlike(s, 21)}`,
    'signature: last char + 0x100': `${h}.${p}.${lookAlike(s, 42)}`,
    'signature: last char + 0xff00': `${h}.${p}.${lookAlike(s, 42, 0xff00)}`,
    'signature: every char + 0x100': `${h}.${p}.${[...s].map((c) => String.fromCharCode(0x100 + c.charCodeAt(0))).join('')}`,
    'payload: U+0130 for a 0': p.includes('0') ? `${h}.${swap(p, p.indexOf('0'), '\u0130')}.${s}` : `${h}.${lookAlike(p, 1)}.${s}`,
    'payload: first char + 0x100': `${h}.${lookAlike(p, 0)}.${s}`,
    'payload: last char + 0x100': `${h}.${lookAlike(p, p.length - 1)}.${s}`,
    'header: U+0130 for a 0': `${swap(h, h.indexOf('0'), '\u0130')}.${p}.${s}`,
    'header: first char + 0x100': `${lookAlike(h, 0)}.${p}.${s}`
  }

  for (const [name, variant] of Object.entries(variants)) {
    t.not(variant, token, `${name}: a different text`)
    t.equal(Buffer.from(variant, 'latin1').toString('latin1'), token, `${name}: the same bytes under latin1`)
    const me = await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${variant}` } })
    t.equal(me.statusCode, 401, `${name}: GET /users/me`)
    const intro = await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token: variant } })
    t.same(intro.json(), { active: false }, `${name}: introspection says inactive`)
  }
  // Last, as an accepted variant would revoke the token (and hide what the others do).
  for (const [name, variant] of Object.entries(variants)) {
    const validate = await app.inject({ method: 'POST', url: '/validate_token', payload: { token: variant } })
    t.equal(validate.statusCode, 401, `${name}: compat POST /validate_token`)
    t.same(validate.json(), { message: 'Invalid or expired token' }, `${name}: compat error body`)
  }

  t.equal((await app.inject({ url: '/users/me', headers: bearer(token) })).statusCode, 200, 'the original still works on /users/me')
  const intro = await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token } })
  t.match(intro.json(), { active: true, sub: u.id, jti: parts(token).payload.jti }, 'and is active')
  const validate = await app.inject({ method: 'POST', url: '/validate_token', payload: { token } })
  t.equal(validate.statusCode, 200, 'and /validate_token still accepts it (no variant renewed it away)')
})
