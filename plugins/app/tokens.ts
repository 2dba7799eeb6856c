import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import { importJWK, jwtVerify, type CryptoKey, type KeyObject } from 'jose'
import type { AsymmetricAlg, PublicJwk } from '../../src/signing-keys'
import type { AccessClaims } from '../../src/schemas/tokens'

export type { AccessClaims }

export interface SignedAccessToken {
  token: string
  jti: string
  exp: number
}

/** Why a token was refused, for metrics: reported through `onReject`, only on refusals. */
export type TokenRejection = 'malformed' | 'bad_signature' | 'expired'

export interface VerifierOptions {
  onReject?: (why: TokenRejection) => void
  secret: Buffer
  issuer: string
  audience: string
  /** seconds; for tests */
  now?: () => number
  /** how many verified tokens to remember (0: none) */
  cacheSize?: number
}

export const ACCESS_TOKEN_TYP = 'at+jwt'

/**
 * The only header this service signs with HS256, used by both the signer and the verifier
 * (createHs256Signer, createAccessTokenVerifier). The verifier requires the header segment
 * to be exactly this string: `alg: none` in any casing, another algorithm,
 * `kid`/`jwk`/`jku`/`x5u`/`x5c`, `crit`, a missing or wrong `typ`, or any other encoding of
 * the same JSON are all refused by one comparison, before any key is touched.
 */
export const ACCESS_TOKEN_HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: ACCESS_TOKEN_TYP }))
  .toString('base64url')
const HEADER_PREFIX = ACCESS_TOKEN_HEADER + '.'
const SIGNATURE_LENGTH = 43 // base64url of 32 bytes, no padding
const MAX_TOKEN_LENGTH = 4096
// Exactly three segments over the base64url alphabet, no padding. Checked before anything
// else reads the text: a latin1 view of U+0130 is '0', so without it a signature character
// swapped for a non-ASCII look-alike still compared equal. (No backtracking: '.' is outside
// every class.)
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128

type VerifiedClaims = AccessClaims & { nbf?: number }

/**
 * The claim checks every verifier makes once the signature holds: a JSON object with string
 * sub/sid/jti, integer iat/exp, exactly our iss and aud (an array, even one that contains
 * ours, is refused), not expired, and no nbf in the future.
 */
function claimsOf (
  payload: unknown, issuer: string, audience: string, t: number
): VerifiedClaims | 'malformed' | 'expired' {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return 'malformed'
  const p = payload as Record<string, unknown>
  if (!isId(p.sub) || !isId(p.sid) || !isId(p.jti) || !isInt(p.iat) || !isInt(p.exp)) return 'malformed'
  if (p.iss !== issuer || p.aud !== audience) return 'malformed'
  if (p.nbf !== undefined && !isInt(p.nbf)) return 'malformed'
  if (p.exp <= t || (p.nbf !== undefined && p.nbf > t)) return 'expired'
  return { sub: p.sub, sid: p.sid, jti: p.jti, iat: p.iat, exp: p.exp, nbf: p.nbf as number | undefined }
}

/**
 * HS256 tokens, signed on node:crypto over ACCESS_TOKEN_HEADER. Why not @fastify/jwt, which
 * signed them before: the verifier compares the header bytes exactly, and fast-jwt builds its
 * header from an object literal, so a release that reordered or added a member would have
 * made every token fail in production. One constant for both sides rules that out.
 */
export function createHs256Signer (opts: { secret: Buffer, issuer: string, audience: string, ttl: number }) {
  const { secret, issuer, audience, ttl } = opts
  return function signHs256 (claims: { sub: string, sid: string, jti: string, iat: number }): string {
    const { sub, sid, jti, iat } = claims
    const payload = { sub, sid, jti, iat, exp: iat + ttl, iss: issuer, aud: audience }
    const input = HEADER_PREFIX + Buffer.from(JSON.stringify(payload)).toString('base64url')
    return input + '.' + createHmac('sha256', secret).update(input).digest('base64url')
  }
}

/**
 * A strict HS256 verifier built once, on node:crypto. Why not fast-jwt, as measured for
 * the benchmark: verifying through @fastify/jwt (fast-jwt) more than halved a bare route's
 * throughput, while a direct HMAC check kept about 0.85 of it. It checks everything docs/api.md's
 * "What every verifier checks" lists; tests/unit/tokens.test.ts attacks each rule.
 * Returns null for anything that is not a valid, unexpired access token of ours.
 */
export function createAccessTokenVerifier (opts: VerifierOptions): (token: string) => AccessClaims | null {
  const { secret, issuer, audience } = opts
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000))
  const expectedSig = Buffer.alloc(SIGNATURE_LENGTH)
  // Clients send the same token for its whole life, so the claims of tokens that passed
  // every check are kept, keyed by the exact token text (no hash, so no key collisions).
  // A hit re-checks `exp` (and `nbf`), the only checks that change with time; revocation
  // is never cached here (the blocklist is asked on every request).
  const cacheSize = opts.cacheSize ?? 10_000
  const verified = new Map<string, VerifiedClaims>()
  const onReject = opts.onReject ?? (() => {})

  return function verifyAccessToken (token) {
    if (typeof token !== 'string') return null
    const hit = verified.get(token)
    if (hit !== undefined) {
      const t = now()
      if (hit.exp > t && (hit.nbf === undefined || hit.nbf <= t)) {
        return { sub: hit.sub, sid: hit.sid, jti: hit.jti, iat: hit.iat, exp: hit.exp }
      }
      verified.delete(token)
      onReject('expired')
      return null
    }
    const claims = verifyUncached(token)
    if (typeof claims === 'string') {
      onReject(claims)
      return null
    }
    if (cacheSize > 0) {
      if (verified.size >= cacheSize) verified.clear() // bounded; refilled by the next requests
      verified.set(token, claims)
    }
    return { sub: claims.sub, sid: claims.sid, jti: claims.jti, iat: claims.iat, exp: claims.exp }
  }

  function verifyUncached (token: string): VerifiedClaims | TokenRejection {
    // The shape check makes every later step see ASCII only: three non-empty segments, the
    // last one 43 characters long, and the first (with its dot) exactly HEADER_PREFIX.
    if (token.length > MAX_TOKEN_LENGTH || !TOKEN_SHAPE.test(token)) return 'malformed'
    // another header: another algorithm (none included), a key id, crit ...: not signed by us
    if (!token.startsWith(HEADER_PREFIX)) return 'bad_signature'
    const dot = token.length - SIGNATURE_LENGTH - 1
    const signingInput = token.slice(0, dot)
    const payloadPart = token.slice(HEADER_PREFIX.length, dot)

    // The signature must be exactly the canonical encoding of the MAC: comparing the
    // base64url text (constant time) also refuses padding and non-canonical trailing bits.
    const mac = createHmac('sha256', secret).update(signingInput).digest('base64url')
    expectedSig.write(mac, 'latin1')
    if (!timingSafeEqual(expectedSig, Buffer.from(token.slice(dot + 1), 'latin1'))) return 'bad_signature'

    let payload: unknown
    try {
      payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'))
    } catch {
      return 'malformed'
    }
    return claimsOf(payload, issuer, audience, now())
  }
}

export interface VerificationKey {
  kid: string
  key: CryptoKey | KeyObject
  /** base64url length of a signature under this key */
  signatureLength: number
}

/** The published keys, imported by jose: the service verifies with exactly what it publishes. */
export async function importVerificationKeys (
  alg: AsymmetricAlg, jwks: readonly PublicJwk[]
): Promise<VerificationKey[]> {
  return Promise.all(jwks.map(async (jwk) => ({
    kid: jwk.kid,
    key: await importJWK({ ...jwk }, alg) as CryptoKey,
    // 64 bytes for Ed25519 and for P-256 (r || s, RFC 7518 §3.4); the modulus size for RSA
    signatureLength: Math.ceil((jwk.kty === 'RSA' ? Buffer.from(jwk.n ?? '', 'base64url').length : 64) * 4 / 3)
  })))
}

export interface AsymmetricVerifierOptions {
  alg: AsymmetricAlg
  keys: readonly VerificationKey[]
  issuer: string
  audience: string
  /** seconds; for tests */
  now?: () => number
  /** how many verified tokens to remember (0: none) */
  cacheSize?: number
  onReject?: (why: TokenRejection) => void
}

const ANY_TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const REQUIRED_CLAIMS = ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud']
const canonical = (segment: string) => Buffer.from(segment, 'base64url').toString('base64url') === segment

/** The order of P-256's group, and half of it: an ES256 signature (r, s) has a twin (r, n - s). */
const P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n
const P256_HALF_N = P256_N >> 1n

const sOf = (raw: Buffer) => BigInt(`0x${raw.subarray(32, 64).toString('hex')}`)

/** Whether an ES256 signature (base64url of r || s) is in its canonical low-S form (RFC 8725 favours one form). */
export function isLowS (signature: string): boolean {
  const raw = Buffer.from(signature, 'base64url')
  return raw.length === 64 && sOf(raw) <= P256_HALF_N
}

/**
 * An ES256 token with its signature in low-S form: the signer (OpenSSL under fast-jwt) gives
 * either twin, and the verifier accepts only the low one, so that a token has one valid text.
 */
export function withLowS (token: string): string {
  const dot = token.lastIndexOf('.')
  const raw = Buffer.from(token.slice(dot + 1), 'base64url')
  const s = sOf(raw)
  if (raw.length !== 64 || s <= P256_HALF_N) return token
  const low = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex')
  return `${token.slice(0, dot + 1)}${Buffer.concat([raw.subarray(0, 32), low]).toString('base64url')}`
}

/**
 * The verifier of an asymmetric JWT_ALG (EdDSA, ES256, RS256): jose checks the signature,
 * behind the same verified-token cache as the HS256 verifier (keyed by the exact token text,
 * exp and nbf re-checked on every hit). jose verifies asynchronously, so a token seen for the
 * first time gets a promise; a cached one, or one refused before any key is used, an answer
 * at once. Before jose sees a token: three canonical base64url segments, a header of exactly
 * { alg: JWT_ALG, typ: at+jwt, kid } whose kid names one of our keys (so `none`, HS256 keyed
 * with our public key, another curve, `jwk`/`jku`/`x5u`/`x5c`, `crit`, an unknown or missing
 * kid are all refused here), and a signature of that key's length (ES256: in low-S form). Then
 * claimsOf, as for HS256.
 */
export function createAsymmetricAccessTokenVerifier (
  opts: AsymmetricVerifierOptions
): (token: string) => AccessClaims | null | Promise<AccessClaims | null> {
  const { alg, issuer, audience } = opts
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000))
  const byKid = new Map(opts.keys.map((k) => [k.kid, k]))
  const cacheSize = opts.cacheSize ?? 10_000
  const verified = new Map<string, VerifiedClaims>()
  // Requests that arrive together with the same new token share one verification.
  const pending = new Map<string, Promise<VerifiedClaims | null>>()
  const copy = (c: VerifiedClaims | null): AccessClaims | null =>
    (c === null ? null : { sub: c.sub, sid: c.sid, jti: c.jti, iat: c.iat, exp: c.exp })
  const onReject = opts.onReject ?? (() => {})

  return function verifyAccessToken (token) {
    if (typeof token !== 'string') return null
    const hit = verified.get(token)
    if (hit !== undefined) {
      const t = now()
      if (hit.exp > t && (hit.nbf === undefined || hit.nbf <= t)) return copy(hit)
      verified.delete(token)
      onReject('expired')
      return null
    }
    const inFlight = pending.get(token)
    if (inFlight !== undefined) return inFlight.then(copy)
    const key = keyFor(token)
    if (typeof key === 'string') {
      onReject(key)
      return null
    }
    const verification = verifySignature(token, key).then((claims) => {
      pending.delete(token)
      if (claims !== null && cacheSize > 0) {
        if (verified.size >= cacheSize) verified.clear()
        verified.set(token, claims)
      }
      return claims
    })
    pending.set(token, verification)
    return verification.then(copy)
  }

  /** The key the header names, when everything jose does not check strictly enough holds. */
  function keyFor (token: string): VerificationKey | TokenRejection {
    if (token.length > MAX_TOKEN_LENGTH || !ANY_TOKEN_SHAPE.test(token)) return 'malformed'
    const dot1 = token.indexOf('.')
    const dot2 = token.indexOf('.', dot1 + 1)
    const headerPart = token.slice(0, dot1)
    const headerBytes = Buffer.from(headerPart, 'base64url')
    if (headerBytes.toString('base64url') !== headerPart) return 'malformed'
    let header: unknown
    try {
      header = JSON.parse(headerBytes.toString('utf8'))
    } catch {
      return 'malformed'
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) return 'malformed'
    const h = header as Record<string, unknown>
    // another algorithm, key or header member: not signed by one of our keys
    if (Object.keys(h).length !== 3 || h.alg !== alg || h.typ !== ACCESS_TOKEN_TYP || typeof h.kid !== 'string') {
      return 'bad_signature'
    }
    const key = byKid.get(h.kid)
    if (key === undefined) return 'bad_signature'
    const signature = token.slice(dot2 + 1)
    if (signature.length !== key.signatureLength || !canonical(signature)) return 'bad_signature'
    // the high-S twin of a valid ES256 signature verifies too: one form only
    if (alg === 'ES256' && !isLowS(signature)) return 'bad_signature'
    if (!canonical(token.slice(dot1 + 1, dot2))) return 'malformed'
    return key
  }

  async function verifySignature (token: string, key: VerificationKey): Promise<VerifiedClaims | null> {
    try {
      const { payload } = await jwtVerify(token, key.key, {
        algorithms: [alg],
        typ: ACCESS_TOKEN_TYP,
        issuer,
        audience,
        requiredClaims: REQUIRED_CLAIMS,
        currentDate: new Date(now() * 1000)
      })
      const claims = claimsOf(payload, issuer, audience, now())
      if (typeof claims !== 'string') return claims
      onReject(claims)
      return null
    } catch (err) {
      // whatever jose refuses is a 401, never a 5xx
      const code = (err as { code?: string }).code
      const why = code === 'ERR_JWT_EXPIRED'
        ? 'expired'
        : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'bad_signature' : 'malformed'
      onReject(why)
      return null
    }
  }
}

/** Refresh tokens: 256 random bits, base64url; only their SHA-256 is stored. */
export function newRefreshToken (): { token: string, hash: string } {
  const token = randomBytes(32).toString('base64url')
  return { token, hash: hashRefreshToken(token) }
}

export function hashRefreshToken (token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url')
}

export interface Tokens {
  /** `iat` (seconds) when the caller fixed the token's expiry beforehand; now otherwise */
  signAccessToken (sub: string, sid: string, iat?: number): SignedAccessToken
  /**
   * The claims of a valid access token, or null. A promise only when the token is new to an
   * asymmetric verifier (jose verifies asynchronously); HS256 and cached tokens answer at once.
   */
  verifyAccessToken (token: string): AccessClaims | null | Promise<AccessClaims | null>
  /** what GET /.well-known/jwks.json serves: the public keys, none with HS256 (frozen) */
  jwks: { keys: PublicJwk[] }
  newRefreshToken: typeof newRefreshToken
  hashRefreshToken: typeof hashRefreshToken
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
  }
}

export default fp(async function tokens (fastify) {
  const { jwt, accessTokenTtl } = fastify.config
  const { issuer, audience } = jwt
  const onReject = (why: TokenRejection) => { fastify.metrics.tokensRejected.inc({ reason: why }) }
  let sign: (claims: { sub: string, sid: string, jti: string, iat: number }) => string
  let verifyAccessToken: Tokens['verifyAccessToken']
  let jwks: Tokens['jwks']
  if (jwt.alg === 'HS256') {
    sign = createHs256Signer({ secret: jwt.secret, issuer, audience, ttl: accessTokenTtl })
    verifyAccessToken = createAccessTokenVerifier({ secret: jwt.secret, issuer, audience, onReject })
    jwks = Object.freeze({ keys: Object.freeze([]) as unknown as PublicJwk[] }) // a shared secret is never published
  } else {
    // fast-jwt (plugins/external/jwt.ts): the first key of JWT_KEYS_FILE, its kid in the
    // header, iss/aud, exp = iat + TTL. Every key of the file verifies.
    sign = jwt.alg === 'ES256' ? (claims) => withLowS(fastify.jwt.sign(claims)) : (claims) => fastify.jwt.sign(claims)
    const published = jwt.keys.map((k) => Object.freeze({ ...k.publicJwk }))
    const keys = await importVerificationKeys(jwt.alg, published)
    verifyAccessToken = createAsymmetricAccessTokenVerifier({ alg: jwt.alg, keys, issuer, audience, onReject })
    jwks = Object.freeze({ keys: Object.freeze(published) as PublicJwk[] })
  }

  // The signer and the verifier are separate code (and, for EdDSA/ES256/RS256, separate
  // libraries): a token one makes that the other refuses stops the service here, at start,
  // instead of answering 401 to every client.
  const now = Math.floor(Date.now() / 1000)
  const probe = sign({ sub: 'start-up-check', sid: randomUUID(), jti: randomUUID(), iat: now })
  if (await verifyAccessToken(probe) === null) {
    throw new Error(`access tokens signed with ${jwt.alg} fail this service's own verification`)
  }

  fastify.decorate('tokens', {
    signAccessToken (sub, sid, iat = Math.floor(Date.now() / 1000)) {
      const jti = randomUUID()
      // iat given explicitly so that exp (iat + TTL, added by the signer) is known here too
      return { token: sign({ sub, sid, jti, iat }), jti, exp: iat + accessTokenTtl }
    },
    verifyAccessToken,
    jwks,
    newRefreshToken,
    hashRefreshToken
  } satisfies Tokens)
}, { name: 'tokens', dependencies: ['config', '@fastify/jwt', 'metrics'] })
