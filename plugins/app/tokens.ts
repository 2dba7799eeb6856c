import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'

export interface AccessClaims {
  sub: string
  sid: string
  jti: string
  iat: number
  exp: number
}

export interface SignedAccessToken {
  token: string
  jti: string
  exp: number
}

export interface VerifierOptions {
  secret: Buffer
  issuer: string
  audience: string
  /** seconds; for tests */
  now?: () => number
  /** how many verified tokens to remember (0: none) */
  cacheSize?: number
}

/**
 * The only header this service ever signs (fast-jwt writes `alg` then `typ`). The verifier
 * requires the header segment to be exactly this string: `alg: none` in any casing, another
 * algorithm, `kid`/`jwk`/`jku`/`x5u`/`x5c`, `crit`, a missing or wrong `typ`, or any other
 * encoding of the same JSON are all refused by one comparison, before any key is touched.
 */
export const ACCESS_TOKEN_HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt' })).toString('base64url')
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
  const verified = new Map<string, AccessClaims & { nbf?: number }>()

  return function verifyAccessToken (token) {
    if (typeof token !== 'string') return null
    const hit = verified.get(token)
    if (hit !== undefined) {
      const t = now()
      if (hit.exp > t && (hit.nbf === undefined || hit.nbf <= t)) return { sub: hit.sub, sid: hit.sid, jti: hit.jti, iat: hit.iat, exp: hit.exp }
      verified.delete(token)
      return null
    }
    const claims = verifyUncached(token)
    if (claims !== null && cacheSize > 0) {
      if (verified.size >= cacheSize) verified.clear() // bounded; refilled by the next requests
      verified.set(token, claims)
    }
    if (claims === null) return null
    return { sub: claims.sub, sid: claims.sid, jti: claims.jti, iat: claims.iat, exp: claims.exp }
  }

  function verifyUncached (token: string): (AccessClaims & { nbf?: number }) | null {
    // The shape check makes every later step see ASCII only: three non-empty segments, the
    // last one 43 characters long, and the first (with its dot) exactly HEADER_PREFIX.
    if (token.length > MAX_TOKEN_LENGTH || !TOKEN_SHAPE.test(token) || !token.startsWith(HEADER_PREFIX)) return null
    const dot = token.length - SIGNATURE_LENGTH - 1
    const signingInput = token.slice(0, dot)
    const payloadPart = token.slice(HEADER_PREFIX.length, dot)

    // The signature must be exactly the canonical encoding of the MAC: comparing the
    // base64url text (constant time) also refuses padding and non-canonical trailing bits.
    const mac = createHmac('sha256', secret).update(signingInput).digest('base64url')
    expectedSig.write(mac, 'latin1')
    if (!timingSafeEqual(expectedSig, Buffer.from(token.slice(dot + 1), 'latin1'))) return null

    let payload: unknown
    try {
      payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'))
    } catch {
      return null
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return null
    const p = payload as Record<string, unknown>
    if (!isId(p.sub) || !isId(p.sid) || !isId(p.jti) || !isInt(p.iat) || !isInt(p.exp)) return null
    // iss and aud must be exactly ours: an array, even one that contains ours, is refused.
    if (p.iss !== issuer || p.aud !== audience) return null
    const t = now()
    if (p.exp <= t) return null
    if (p.nbf !== undefined && (!isInt(p.nbf) || p.nbf > t)) return null
    return { sub: p.sub, sid: p.sid, jti: p.jti, iat: p.iat, exp: p.exp, nbf: p.nbf as number | undefined }
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
  verifyAccessToken (token: string): AccessClaims | null
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
  const verifyAccessToken = createAccessTokenVerifier({ secret: jwt.secret, issuer: jwt.issuer, audience: jwt.audience })

  fastify.decorate('tokens', {
    signAccessToken (sub, sid, iat = Math.floor(Date.now() / 1000)) {
      const jti = randomUUID()
      // iat given explicitly so that exp (iat + TTL, added by the signer) is known here too
      const token = fastify.jwt.sign({ sub, sid, jti, iat })
      return { token, jti, exp: iat + accessTokenTtl }
    },
    verifyAccessToken,
    newRefreshToken,
    hashRefreshToken
  } satisfies Tokens)
}, { name: 'tokens', dependencies: ['config', '@fastify/jwt'] })
