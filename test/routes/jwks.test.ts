import t from 'tap'
import { createPrivateKey, createPublicKey, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CompactSign, createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { bearer, build, login, newUser, PASSWORD, startServer, TEST_SECRET, uniqueName, type App } from '../helper'
import { b64, forge, parts } from '../jwt-forge'
import { generateSigningJwk, type AsymmetricAlg } from '../../src/signing-keys'
import { ACCESS_TOKEN_HEADER } from '../../src/tokens/hs256-verifier'
import { withLowS } from '../../src/tokens/es256-low-s'

// docs/api.md, "Scale-out", "Keys other services verify": tokens signed with the first key of
// JWT_KEYS_FILE, verified with any key of it, published at /.well-known/jwks.json, and every
// token that is not exactly that refused with 401.

const ALGS: AsymmetricAlg[] = ['EdDSA', 'ES256', 'RS256']
const ISS = 'auth-service'
const AUD = 'auth-service'
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']
const PUBLIC_MEMBERS: Record<AsymmetricAlg, string[]> = {
  EdDSA: ['alg', 'crv', 'kid', 'kty', 'use', 'x'],
  ES256: ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'],
  RS256: ['alg', 'e', 'kid', 'kty', 'n', 'use']
}

type Jwk = Record<string, unknown> & { kid: string }
const dir = mkdtempSync(join(tmpdir(), 'auth-jwks-'))
let files = 0
function keysFile (keys: Jwk[]): string {
  const file = join(dir, `keys-${++files}.json`)
  writeFileSync(file, JSON.stringify({ keys }), { mode: 0o600 })
  return file
}
const privateKeyOf = (jwk: Jwk) => createPrivateKey({ key: jwk as never, format: 'jwk' })

/** A JWS over any header and payload, signed by jose (as an attacker holding `key` would). */
async function sign (header: Record<string, unknown>, payload: unknown, key: KeyObject, crit?: Record<string, boolean>): Promise<string> {
  const body = new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload))
  const jws = await new CompactSign(body).setProtectedHeader(header as never).sign(key, crit === undefined ? undefined : { crit })
  // ES256: in the one form the service accepts (test/routes/es256-low-s.test.ts has the other)
  return header.alg === 'ES256' ? withLowS(jws) : jws
}

const jwksOf = async (app: App) => (await app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet
const status = async (app: App, token: string) => (await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` } })).statusCode

t.test('HS256 (the default): the JWKS is empty and HS256 tokens carry our header constant', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { keys: [] }, 'a shared secret is never published')
  t.equal(res.headers['cache-control'], 'public, max-age=300')
  const u = await newUser(app)
  t.equal(u.tokens.access_token.split('.')[0], ACCESS_TOKEN_HEADER, 'signed over the very header constant the verifier requires')
  t.equal(await status(app, u.tokens.access_token), 200)
})

t.test('the OpenAPI document describes GET /.well-known/jwks.json', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json() as { paths: Record<string, Record<string, { operationId: string, tags: string[], summary: string, responses: Record<string, { content: Record<string, { schema: { properties: Record<string, unknown> } }> }> }>> }
  const op = doc.paths['/.well-known/jwks.json']?.get
  t.ok(op, 'the path is documented')
  t.equal(op?.operationId, 'jwks')
  t.same(op?.tags, ['keys'])
  t.ok(op?.summary)
  t.ok(op?.responses['200'].content['application/json'].schema.properties.keys, 'with its response schema')
})

for (const alg of ALGS) {
  t.test(`${alg}: the served JWKS, and a downstream service verifying our tokens with jose`, async (t) => {
    const [first, second] = [await generateSigningJwk(alg) as Jwk, await generateSigningJwk(alg) as Jwk]
    const app = await build(t, { JWT_ALG: alg, JWT_KEYS_FILE: keysFile([first, second]) })

    const res = await app.inject({ url: '/.well-known/jwks.json' })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['cache-control'], 'public, max-age=300', 'cacheable, unlike every other answer')
    t.match(res.headers['content-type'], /^application\/json/)
    const jwks = res.json() as { keys: Array<Record<string, unknown>> }
    t.same(jwks.keys.map((k) => k.kid), [first.kid, second.kid], 'every key, in the file\'s order')
    for (const key of jwks.keys) {
      t.same(Object.keys(key).sort(), PUBLIC_MEMBERS[alg], 'public members only')
      for (const member of PRIVATE_MEMBERS) t.notOk(member in key, `no ${member}`)
      t.equal(key.alg, alg)
      t.equal(key.use, 'sig')
    }
    t.notMatch(res.body, String(first.d), 'the private key is nowhere in the body')

    const u = await newUser(app)
    const token = u.tokens.access_token
    const { header, payload } = parts(token)
    t.same(header, { alg, typ: 'at+jwt', kid: first.kid }, 'signed by the first key, its kid in the header')
    t.same(Object.keys(payload).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub'])
    t.equal(await status(app, token), 200)

    // What a downstream service does: the JWKS it fetched, and nothing shared with us.
    const downstream = createLocalJWKSet(jwks as JSONWebKeySet)
    const verified = await jwtVerify(token, downstream, { algorithms: [alg], issuer: ISS, audience: AUD, typ: 'at+jwt', requiredClaims: ['sub', 'sid', 'jti', 'exp', 'iat'] })
    t.equal(verified.payload.sub, u.id, 'jose verifies it and reads our claims')
    t.equal(verified.protectedHeader.kid, first.kid)

    // A token of the second key: the service and the downstream verifier accept it too.
    const nowS = Math.floor(Date.now() / 1000)
    const bySecond = await sign({ alg, typ: 'at+jwt', kid: second.kid }, { ...payload, jti: `second-${nowS}` }, privateKeyOf(second))
    t.equal(await status(app, bySecond), 200, 'every key of the file verifies')
    t.equal((await jwtVerify(bySecond, downstream, { algorithms: [alg], issuer: ISS, audience: AUD })).protectedHeader.kid, second.kid)
  })

  t.test(`${alg}: every token that is not exactly ours is a 401`, async (t) => {
    const [ours, second] = [await generateSigningJwk(alg) as Jwk, await generateSigningJwk(alg) as Jwk]
    const app = await build(t, { JWT_ALG: alg, JWT_KEYS_FILE: keysFile([ours, second]) })
    const u = await newUser(app)
    const real = parts(u.tokens.access_token)
    const own = privateKeyOf(ours)
    const pub = createPublicKey(own)
    const publicJwk = (await jwksOf(app)).keys[0]
    const H = { alg, typ: 'at+jwt', kid: ours.kid }
    const now = Math.floor(Date.now() / 1000)
    let n = 0
    // real sub and sid: the only reason to refuse is what each case changes
    const claims = (o: Record<string, unknown> = {}) => ({ ...real.payload, jti: `forged-${++n}`, ...o })

    t.equal(await status(app, await sign(H, claims(), own)), 200, 'a token made with our own key and header passes (the forge is right)')

    // HS256 keyed with our public key, in every encoding an HMAC library might be handed
    const spkiPem = pub.export({ format: 'pem', type: 'spki' }) as string
    const publicEncodings: Record<string, string | Buffer> = {
      'PEM (SPKI)': spkiPem,
      'PEM without its final newline': spkiPem.trim(),
      'DER (SPKI)': pub.export({ format: 'der', type: 'spki' }),
      'JWK (JSON text)': JSON.stringify(publicJwk),
      'JWK as exported by node': JSON.stringify(pub.export({ format: 'jwk' }))
    }
    if (alg === 'RS256') {
      publicEncodings['PEM (PKCS#1)'] = pub.export({ format: 'pem', type: 'pkcs1' }) as string
      publicEncodings['raw (PKCS#1 DER)'] = pub.export({ format: 'der', type: 'pkcs1' })
      publicEncodings['raw (modulus)'] = Buffer.from(publicJwk.n!, 'base64url')
    } else if (alg === 'ES256') {
      publicEncodings['raw (uncompressed point)'] = Buffer.concat([Buffer.from([4]), Buffer.from(publicJwk.x!, 'base64url'), Buffer.from(publicJwk.y!, 'base64url')])
    } else {
      publicEncodings['raw (32 bytes)'] = Buffer.from(publicJwk.x!, 'base64url')
    }

    const foreign = privateKeyOf(await generateSigningJwk(alg) as Jwk)
    const others: Array<[string, KeyObject]> = [
      ['EdDSA', generateKeyPairSync('ed25519').privateKey],
      ['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey],
      ['ES384', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey],
      ['ES512', generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey],
      ['RS256', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
      ['PS256', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey]
    ]

    const attacks: Record<string, string> = {}
    for (const [name, key] of Object.entries(publicEncodings)) {
      attacks[`HS256 keyed with the public key, ${name}, our kid`] = forge({ alg: 'HS256', typ: 'at+jwt', kid: ours.kid }, claims(), key)
      attacks[`HS256 keyed with the public key, ${name}, no kid`] = forge({ alg: 'HS256', typ: 'at+jwt' }, claims(), key)
    }
    Object.assign(attacks, {
      'HS256 keyed with JWT_SECRET (set, but not used)': forge({ alg: 'HS256', typ: 'at+jwt' }, claims(), TEST_SECRET),
      'alg none, our kid': `${b64({ alg: 'none', typ: 'at+jwt', kid: ours.kid })}.${b64(claims())}.`,
      'alg NONE, our kid': `${b64({ alg: 'NONE', typ: 'at+jwt', kid: ours.kid })}.${b64(claims())}.`,
      'alg none with a real signature': `${b64({ alg: 'none', typ: 'at+jwt', kid: ours.kid })}.${real.p}.${real.s}`,
      [`alg ${alg.toLowerCase()}`]: await sign({ ...H, alg: alg.toLowerCase() }, claims(), own).catch(() => `${b64({ ...H, alg: alg.toLowerCase() })}.${b64(claims())}.${real.s}`),
      'unknown kid, signed with our key': await sign({ ...H, kid: 'not-one-of-ours' }, claims(), own),
      'missing kid, signed with our key': await sign({ alg, typ: 'at+jwt' }, claims(), own),
      'kid of the second key, signed with the first': await sign({ ...H, kid: second.kid }, claims(), own),
      'kid as a path, signed with our key': await sign({ ...H, kid: '../../../../../../dev/null' }, claims(), own),
      'kid as SQL, signed with our key': await sign({ ...H, kid: "x' UNION SELECT 'key" }, claims(), own),
      'kid as a number': await sign({ ...H, kid: 1 }, claims(), own),
      'foreign key of the same type under our kid': await sign(H, claims(), foreign),
      'jwk in the header (the attacker\'s key)': await sign({ ...H, jwk: createPublicKey(foreign).export({ format: 'jwk' }) }, claims(), foreign),
      'jwk in the header (our own key, our signature)': await sign({ ...H, jwk: publicJwk }, claims(), own),
      'jku in the header': await sign({ ...H, jku: 'http://127.0.0.1:1/jwks.json' }, claims(), own),
      'x5u in the header': await sign({ ...H, x5u: 'http://127.0.0.1:1/x5u' }, claims(), own),
      'x5c in the header': await sign({ ...H, x5c: ['MIIB'] }, claims(), own),
      'unknown crit': await sign({ ...H, crit: ['urn:example:unknown'], 'urn:example:unknown': true }, claims(), own, { 'urn:example:unknown': true }),
      'typ JWT': await sign({ ...H, typ: 'JWT' }, claims(), own),
      'typ application/at+jwt': await sign({ ...H, typ: 'application/at+jwt' }, claims(), own),
      'no typ': await sign({ alg, kid: ours.kid }, claims(), own),
      'tampered payload, real signature': `${real.h}.${b64({ ...real.payload, sub: '00000000-0000-4000-8000-000000000000' })}.${real.s}`,
      'stripped signature': `${real.h}.${real.p}.`,
      'no signature segment': `${real.h}.${real.p}`,
      'padded signature': `${real.h}.${real.p}.${real.s}==`,
      'signature cut short': `${real.h}.${real.p}.${real.s.slice(0, -2)}`,
      'four segments': `${u.tokens.access_token}.${real.s}`,
      expired: await sign(H, claims({ iat: now - 1000, exp: now - 10 }), own),
      'future nbf': await sign(H, claims({ nbf: now + 3600 }), own),
      'missing sub': await sign(H, claims({ sub: undefined }), own),
      'missing sid': await sign(H, claims({ sid: undefined }), own),
      'missing jti': await sign(H, { ...claims(), jti: undefined }, own),
      'missing exp': await sign(H, claims({ exp: undefined }), own),
      'missing iat': await sign(H, claims({ iat: undefined }), own),
      'wrong iss': await sign(H, claims({ iss: 'evil' }), own),
      'wrong aud': await sign(H, claims({ aud: 'evil' }), own),
      'iss as an array': await sign(H, claims({ iss: [ISS, 'evil'] }), own),
      'aud as an array': await sign(H, claims({ aud: ['evil', AUD] }), own),
      'payload a JSON array': await sign(H, [claims()], own),
      'payload a JSON string': await sign(H, '"just a string"', own),
      '8 KiB header': await sign({ ...H, junk: 'x'.repeat(8192) }, claims(), own),
      'a refresh token': u.tokens.refresh_token
    })
    for (const [otherAlg, key] of others) {
      if (otherAlg === alg) continue
      attacks[`${otherAlg} (another key type or curve) under our kid`] = await sign({ ...H, alg: otherAlg }, claims(), key)
    }
    if (alg === 'RS256') {
      // our own RSA key, with the other algorithms it could sign for
      for (const other of ['PS256', 'RS384', 'RS512', 'PS512']) attacks[`${other} with our own key and kid`] = await sign({ ...H, alg: other }, claims(), own)
    }
    if (alg === 'ES256') {
      // the same signature in DER instead of the JWS form (r || s)
      const input = `${b64(H)}.${b64(claims())}`
      attacks['ES256 signature DER-encoded'] = `${input}.${createSign('sha256').update(input).sign(own).toString('base64url')}`
    }
    // The same signature bytes under another base64url spelling (non-zero trailing bits).
    const sigBytes = Buffer.from(real.s, 'base64url')
    const last = real.s.slice(-1)
    const respelled = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_']
      .map((c) => real.s.slice(0, -1) + c)
      .find((s) => s.slice(-1) !== last && Buffer.from(s, 'base64url').equals(sigBytes))
    t.ok(respelled, 'a non-canonical spelling of the signature exists')
    attacks['signature in a non-canonical base64url spelling'] = `${real.h}.${real.p}.${respelled}`

    for (const [name, token] of Object.entries(attacks)) {
      const res = await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` } })
      t.equal(res.statusCode, 401, `${name}: GET /users/me`)
      t.notMatch(res.body, token.slice(-20) || '<empty>', `${name}: the token is not echoed`)
      const intro = await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token } })
      t.same(intro.json(), { active: false }, `${name}: introspection says inactive`)
    }
    t.equal(await status(app, u.tokens.access_token), 200, 'the real token still works')
  })

  t.test(`${alg}: revocation works as with HS256`, async (t) => {
    const app = await build(t, { JWT_ALG: alg, JWT_KEYS_FILE: keysFile([await generateSigningJwk(alg) as Jwk]) })

    // logout: the session's tokens stop at once, though the token is in the verified cache
    const a = await newUser(app)
    t.equal(await status(app, a.tokens.access_token), 200)
    t.equal(await status(app, a.tokens.access_token), 200, 'twice (the second from the cache)')
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: a.auth })).statusCode, 204)
    t.equal(await status(app, a.tokens.access_token), 401, 'logout: the token is refused')
    t.same((await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token: a.tokens.access_token } })).json(), { active: false })
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: a.tokens.refresh_token } })).statusCode, 401, 'and its refresh token')

    // one token (jti) revoked (consumed by its renewal), its session lives
    const b = await newUser(app)
    const claims = (await app.tokens.verifyAccessToken(b.tokens.access_token))!
    t.ok(claims, 'the verifier reads our token')
    await app.sessions.renewAccessToken(claims)
    t.equal(await status(app, b.tokens.access_token), 401, 'a revoked jti')
    const again = await login(app, b.username)
    t.equal(await status(app, again.access_token), 200, 'a new login works')

    // refresh: the new access token works; replaying the old refresh token revokes the session
    const c = await newUser(app)
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: c.tokens.refresh_token } })
    t.equal(refreshed.statusCode, 200)
    const next = refreshed.json() as { access_token: string }
    t.equal(parts(next.access_token).header.alg, alg)
    t.equal(await status(app, next.access_token), 200)
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: c.tokens.refresh_token } })).statusCode, 401, 'reuse')
    t.equal(await status(app, next.access_token), 401, 'reuse revoked the session')
    t.equal(await status(app, c.tokens.access_token), 401)

    // compat renewal: the old token is consumed, the new one (signed with our key) works
    const d = await newUser(app)
    const renewed = await app.inject({ method: 'POST', url: '/validate_token', payload: { token: d.tokens.access_token } })
    t.equal(renewed.statusCode, 200)
    const fresh = (renewed.json() as { token: string }).token
    t.equal(parts(fresh).header.kid, parts(d.tokens.access_token).header.kid)
    t.equal(await status(app, fresh), 200, 'the renewed token works')
    t.equal(await status(app, d.tokens.access_token), 401, 'the renewed-from token is revoked')
  })

  t.test(`${alg}: rotation keeps an older key's tokens valid until the key leaves the file`, async (t) => {
    const [A, B] = [await generateSigningJwk(alg) as Jwk, await generateSigningJwk(alg) as Jwk]
    const DATABASE_URL = `file:${join(mkdtempSync(join(dir, 'db-')), 'auth.db')}` // the instances share users and sessions
    const before = await build(t, { JWT_ALG: alg, JWT_KEYS_FILE: keysFile([A]), DATABASE_URL })
    const u = await newUser(before)
    const tokenA = u.tokens.access_token
    t.equal(parts(tokenA).header.kid, A.kid)

    // rotated: B first (signs), A kept (verifies)
    const rotated = await build(t, { JWT_ALG: alg, JWT_KEYS_FILE: keysFile([B, A]), DATABASE_URL })
    t.equal(await status(rotated, tokenA), 200, 'a token of the old key still passes')
    const tokenB = (await login(rotated, u.username, PASSWORD)).access_token
    t.equal(parts(tokenB).header.kid, B.kid, 'new tokens are signed with the new key')
    t.equal(await status(rotated, tokenB), 200)
    t.equal(await status(before, tokenB), 401, 'an instance not yet restarted refuses the new key (why README stages a key first)')
    const jwks = await jwksOf(rotated)
    t.same(jwks.keys.map((k) => k.kid), [B.kid, A.kid], 'both published')
    for (const token of [tokenA, tokenB]) {
      t.ok((await jwtVerify(token, createLocalJWKSet(jwks), { algorithms: [alg], issuer: ISS, audience: AUD })).payload.sub, 'downstream verifies both')
    }

    // A removed: its tokens stop; B's go on
    const after = await build(t, { JWT_ALG: alg, JWT_KEYS_FILE: keysFile([B]), DATABASE_URL })
    t.equal(await status(after, tokenA), 401, 'the old key left the file: its token is refused')
    t.equal(await status(after, tokenB), 200)
    const jwksAfter = await jwksOf(after)
    t.same(jwksAfter.keys.map((k) => k.kid), [B.kid])
    await t.rejects(jwtVerify(tokenA, createLocalJWKSet(jwksAfter), { algorithms: [alg] }), 'downstream refuses it too once it has the new set')
  })
}

t.test('many requests at once with a token not verified yet: one answer each, all right', async (t) => {
  const app = await build(t, { JWT_ALG: 'ES256', JWT_KEYS_FILE: keysFile([await generateSigningJwk('ES256') as Jwk]) })
  const u = await newUser(app)
  const fresh = (await login(app, u.username)).access_token // never presented yet
  const { h, p, s } = parts(fresh)
  const tampered = `${h}.${b64({ ...parts(fresh).payload, sub: u.id + 'x' })}.${s}`
  const [good, bad] = await Promise.all([
    Promise.all(Array.from({ length: 20 }, () => app.inject({ url: '/users/me', headers: bearer(fresh) }))),
    Promise.all(Array.from({ length: 20 }, () => app.inject({ url: '/users/me', headers: bearer(tampered) })))
  ])
  t.same(good.map((r) => r.statusCode), Array(20).fill(200), 'the valid token: 200 for every request')
  t.same(good.map((r) => (r.json() as { id: string }).id), Array(20).fill(u.id))
  t.same(bad.map((r) => r.statusCode), Array(20).fill(401), 'the tampered one: 401 for every request')
  t.equal(await status(app, `${h}.${p}.${s}`), 200)
})

t.test('a real server process: jose fetches the JWKS over HTTP and verifies a login\'s token (npm run build first)', async (t) => {
  const server = await startServer(t, { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keysFile([await generateSigningJwk('EdDSA') as Jwk]) })
  const call = async (path: string, body: unknown) => fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const username = uniqueName('jwks')
  t.equal((await call('/auth/register', { username, password: PASSWORD })).status, 201)
  const { access_token: token } = await (await call('/auth/login', { username, password: PASSWORD })).json() as { access_token: string }
  const res = await fetch(`${server.url}/.well-known/jwks.json`)
  t.equal(res.headers.get('cache-control'), 'public, max-age=300')
  const remote = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`))
  const { payload } = await jwtVerify(token, remote, { algorithms: ['EdDSA'], issuer: ISS, audience: AUD, typ: 'at+jwt' })
  t.equal(payload.iss, ISS)
  t.equal((await fetch(`${server.url}/users/me`, { headers: bearer(token) })).status, 200)
})
