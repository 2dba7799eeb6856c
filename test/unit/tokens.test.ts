import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createVerifier } from 'fast-jwt'
import { ACCESS_TOKEN_HEADER, createAccessTokenVerifier } from '../../src/tokens/hs256-verifier'
import { hashRefreshToken, newRefreshToken } from '../../src/tokens/refresh-tokens'
import { b64, claims, forge, GOOD_HEADER, hmac } from '../jwt-forge'

const secret = randomBytes(32)
const verify = createAccessTokenVerifier({ secret, issuer: 'auth-service', audience: 'auth-service' })

t.test('accepts a well-formed token and returns exactly its claims', async (t) => {
  const c = claims()
  const out = verify(forge(GOOD_HEADER, c, secret))
  t.same(out, { sub: c.sub, sid: c.sid, jti: c.jti, iat: c.iat, exp: c.exp })
})

t.test('the header it requires is the one fast-jwt writes for our sign options', async (t) => {
  t.equal(Buffer.from(ACCESS_TOKEN_HEADER, 'base64url').toString(), '{"alg":"HS256","typ":"at+jwt"}')
})

t.test('rejects every attack on the header', async (t) => {
  const c = claims()
  const cases: Record<string, string> = {
    'alg none': `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(c)}.`,
    'alg NoNe': `${b64({ alg: 'NoNe', typ: 'at+jwt' })}.${b64(c)}.`,
    'alg none with a signature': forge({ alg: 'none', typ: 'at+jwt' }, c, secret),
    HS384: forge({ alg: 'HS384', typ: 'at+jwt' }, c, secret, 'HS384'),
    HS512: forge({ alg: 'HS512', typ: 'at+jwt' }, c, secret, 'HS512'),
    RS256: forge({ alg: 'RS256', typ: 'at+jwt' }, c, secret),
    'typ JWT': forge({ alg: 'HS256', typ: 'JWT' }, c, secret),
    'no typ': forge({ alg: 'HS256' }, c, secret),
    'kid path': forge({ alg: 'HS256', typ: 'at+jwt', kid: '../../../../dev/null' }, c, ''),
    'kid sql': forge({ alg: 'HS256', typ: 'at+jwt', kid: "' OR 1=1 --" }, c, secret),
    jwk: forge({ alg: 'HS256', typ: 'at+jwt', jwk: { kty: 'oct', k: b64('attacker') } }, c, 'attacker'),
    jku: forge({ alg: 'HS256', typ: 'at+jwt', jku: 'http://127.0.0.1/keys' }, c, secret),
    x5u: forge({ alg: 'HS256', typ: 'at+jwt', x5u: 'http://127.0.0.1/cert' }, c, secret),
    crit: forge({ alg: 'HS256', typ: 'at+jwt', crit: ['exp'] }, c, secret),
    'keys reordered': forge({ typ: 'at+jwt', alg: 'HS256' }, c, secret),
    'header with whitespace': (() => {
      const input = `${b64('{"alg": "HS256", "typ": "at+jwt"}')}.${b64(c)}`
      return `${input}.${hmac('HS256', secret, input)}`
    })(),
    '8 KiB header': forge({ ...GOOD_HEADER, pad: 'x'.repeat(8192) }, c, secret)
  }
  for (const [name, token] of Object.entries(cases)) t.equal(verify(token), null, name)
})

t.test('rejects bad signatures and malformed tokens', async (t) => {
  const good = forge(GOOD_HEADER, claims(), secret)
  const [h, p, s] = good.split('.')
  const flip = (ch: string) => (ch === 'A' ? 'B' : 'A')
  const cases: Record<string, string> = {
    'wrong key': forge(GOOD_HEADER, claims(), randomBytes(32)),
    'empty key': forge(GOOD_HEADER, claims(), ''),
    'stripped signature': `${h}.${p}.`,
    'no signature segment': `${h}.${p}`,
    'two segments': `${h}.${p}`,
    'four segments': `${good}.${s}`,
    'padded signature': `${h}.${p}.${s}=`,
    'non-canonical signature bits': `${h}.${p}.${s.slice(0, -1)}${String.fromCharCode(s.charCodeAt(42) + 1)}`,
    'padded payload': `${h}.${p}=.${s}`,
    'tampered payload': `${h}.${b64({ ...claims(), sub: 'admin' })}.${s}`,
    'flipped signature char': `${h}.${p}.${flip(s[0])}${s.slice(1)}`,
    'bad base64': `${h}.${p}!.${s}`,
    empty: '',
    'just dots': '..',
    garbage: 'not.a.jwt'
  }
  for (const [name, token] of Object.entries(cases)) t.equal(verify(token), null, name)
  t.not(verify(good), null, 'the untouched token still verifies')
})

t.test('refuses every character outside the base64url alphabet, in any segment', async (t) => {
  const good = forge(GOOD_HEADER, claims(), secret)
  const [h, p, s] = good.split('.')
  const swap = (text: string, at: number, ch: string) => text.slice(0, at) + ch + text.slice(at + 1)
  // Same low byte as the character replaced: equal to the original under a latin1 reading.
  const lookAlike = (text: string, at: number, plane = 0x100) => swap(text, at, String.fromCharCode(plane + text.charCodeAt(at)))
  const cases: Record<string, string> = {
    'signature char + 0x100': `${h}.${p}.${lookAlike(s, 5)}`,
    'signature last char + 0x100': `${h}.${p}.${lookAlike(s, 42)}`,
    'signature char + 0xff00': `${h}.${p}.${lookAlike(s, 0, 0xff00)}`,
    'signature entirely + 0x100': `${h}.${p}.${[...s].map((c) => String.fromCharCode(0x100 + c.charCodeAt(0))).join('')}`,
    'payload char + 0x100': `${h}.${lookAlike(p, 3)}.${s}`,
    'header char + 0x100': `${lookAlike(h, 3)}.${p}.${s}`,
    'header U+0130 for its 0': `${swap(h, h.indexOf('0'), '\u0130')}.${p}.${s}`
  }
  if (s.includes('0')) cases['signature U+0130 for a 0'] = `${h}.${p}.${swap(s, s.indexOf('0'), '\u0130')}`
  // Correctly signed with our key, but not canonical base64url: a decoder that skips what
  // it does not know would read the same claims.
  const signed = (payloadText: string) => {
    const input = `${ACCESS_TOKEN_HEADER}.${payloadText}`
    return `${input}.${hmac('HS256', secret, input)}`
  }
  for (const [name, ch] of Object.entries({ padding: '=', space: ' ', newline: '\n', tab: '\t', NUL: '\0', plus: '+', slash: '/', 'U+0130': '\u0130', 'U+00E9': '\u00e9' })) {
    cases[`payload with ${name} inside, signed with our key`] = signed(p.slice(0, 8) + ch + p.slice(8))
    cases[`payload ending in ${name}, signed with our key`] = signed(p + ch)
  }
  for (const [name, token] of Object.entries(cases)) t.equal(verify(token), null, name)
  t.not(verify(good), null, 'the untouched token still verifies')
})

t.test('a cached token does not vouch for its look-alikes', async (t) => {
  const cached = createAccessTokenVerifier({ secret, issuer: 'auth-service', audience: 'auth-service' })
  const good = forge(GOOD_HEADER, claims(), secret)
  t.not(cached(good), null, 'cached')
  const variant = good.slice(0, -1) + String.fromCharCode(0x100 + good.charCodeAt(good.length - 1))
  t.equal(Buffer.from(variant, 'latin1').toString('latin1'), good, 'the same bytes under latin1')
  t.equal(cached(variant), null, 'the look-alike is refused')
  t.equal(cached(variant), null, 'and was not cached either')
  t.not(cached(good), null, 'the original still verifies')
})

t.test('rejects bad payloads even when correctly signed', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const cases: Record<string, unknown> = {
    expired: claims({ exp: now - 1 }),
    'exp now': claims({ exp: now }),
    'nbf in the future': claims({ nbf: now + 60 }),
    'nbf not a number': claims({ nbf: 'soon' }),
    'wrong iss': claims({ iss: 'someone-else' }),
    'wrong aud': claims({ aud: 'another-api' }),
    'iss as array': claims({ iss: ['auth-service'] }),
    'aud as array': claims({ aud: ['auth-service', 'x'] }),
    'exp as string': claims({ exp: String(now + 600) }),
    'exp fractional': claims({ exp: now + 600.5 }),
    'iat missing': claims({ iat: undefined }),
    'sub missing': claims({ sub: undefined }),
    'sid missing': claims({ sid: undefined }),
    'jti missing': claims({ jti: undefined }),
    'exp missing': claims({ exp: undefined }),
    'sub empty': claims({ sub: '' }),
    'sub a number': claims({ sub: 42 }),
    'payload an array': [claims()],
    'payload a string': 'hello',
    'payload null': null,
    'payload a number': 12
  }
  for (const [name, payload] of Object.entries(cases)) t.equal(verify(forge(GOOD_HEADER, payload, secret)), null, name)
  // A payload that is not JSON at all, correctly signed.
  const input = `${ACCESS_TOKEN_HEADER}.${b64('{not json')}`
  t.equal(verify(`${input}.${hmac('HS256', secret, input)}`), null, 'payload not JSON')
})

t.test('accepts nbf in the past', async (t) => {
  t.not(verify(forge(GOOD_HEADER, claims({ nbf: Math.floor(Date.now() / 1000) - 5 }), secret)), null)
})

t.test('every token fast-jwt (pinned the same way) refuses, ours refuses too', async (t) => {
  // A cross-check against the library the stack names: our verifier is never looser.
  // The key as the Buffer it is (a latin1 string would be re-read as UTF-8: another key).
  const fast = createVerifier({ key: secret, algorithms: ['HS256'], allowedIss: 'auth-service', allowedAud: 'auth-service', requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'], cache: false })
  t.ok(fast(forge(GOOD_HEADER, claims(), secret)), 'fast-jwt accepts a good token (same key)')
  const samples = [
    forge(GOOD_HEADER, claims({ exp: 1 }), secret),
    forge({ alg: 'HS512', typ: 'at+jwt' }, claims(), secret, 'HS512'),
    forge(GOOD_HEADER, claims({ iss: 'x' }), secret),
    forge(GOOD_HEADER, claims(), randomBytes(32))
  ]
  for (const token of samples) {
    t.throws(() => fast(token), 'fast-jwt refuses')
    t.equal(verify(token), null, 'so do we')
  }
})

t.test('refresh tokens: 256 random bits, unique, only the hash is kept', async (t) => {
  const a = newRefreshToken()
  const b = newRefreshToken()
  t.equal(Buffer.from(a.token, 'base64url').length, 32)
  t.not(a.token, b.token)
  t.equal(a.hash, hashRefreshToken(a.token))
  t.not(a.hash, a.token)
  t.equal(hashRefreshToken(a.token + 'x') === a.hash, false)
})

t.test('the cache of verified tokens re-checks exp and nbf, and is keyed by the exact token', async (t) => {
  let clock = Math.floor(Date.now() / 1000)
  const cached = createAccessTokenVerifier({ secret, issuer: 'auth-service', audience: 'auth-service', now: () => clock })
  const c = claims({ iat: clock, exp: clock + 60, nbf: clock })
  const token = forge(GOOD_HEADER, c, secret)
  t.not(cached(token), null, 'first use: verified and cached')
  t.same(cached(token), { sub: c.sub, sid: c.sid, jti: c.jti, iat: c.iat, exp: c.exp }, 'a hit answers the same claims')
  t.equal(cached(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), null, 'a near-identical token is verified afresh (and fails)')
  clock += 61
  t.equal(cached(token), null, 'expired while cached: refused')
})

t.test('a cached token with a future nbf is not served early', async (t) => {
  let clock = Math.floor(Date.now() / 1000)
  const cached = createAccessTokenVerifier({ secret, issuer: 'auth-service', audience: 'auth-service', now: () => clock })
  const c = claims({ iat: clock, exp: clock + 600, nbf: clock })
  const token = forge(GOOD_HEADER, c, secret)
  t.not(cached(token), null)
  clock -= 10 // a clock stepped back: nbf is in the future again
  t.equal(cached(token), null)
})
