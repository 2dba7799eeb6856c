import { importJWK, jwtVerify, type CryptoKey, type KeyObject } from 'jose'
import type { AsymmetricAlg, PublicJwk } from '../signing-keys'
import {
  ACCESS_TOKEN_TYP, MAX_TOKEN_LENGTH, REQUIRED_CLAIMS, accessClaims, claimsOf, secondsNow,
  type AccessClaims, type TokenRejection, type VerifiedClaims
} from './claims'
import { isLowS } from './es256-low-s'
import { VerifiedTokenCache } from './verified-token-cache'

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
const canonical = (segment: string) => Buffer.from(segment, 'base64url').toString('base64url') === segment
const copy = (c: VerifiedClaims | null): AccessClaims | null => (c === null ? null : accessClaims(c))

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
  const now = opts.now ?? secondsNow
  const byKid = new Map(opts.keys.map((k) => [k.kid, k]))
  const cache = new VerifiedTokenCache(opts.cacheSize ?? 10_000)
  // Requests that arrive together with the same new token share one verification.
  const pending = new Map<string, Promise<VerifiedClaims | null>>()
  const onReject = opts.onReject ?? (() => {})

  return function verifyAccessToken (token) {
    if (typeof token !== 'string') return null
    const hit = cache.get(token, now())
    if (hit === 'expired') {
      onReject('expired')
      return null
    }
    if (hit !== undefined) return accessClaims(hit)
    const inFlight = pending.get(token)
    if (inFlight !== undefined) return inFlight.then(copy)
    const key = keyFor(token)
    if (typeof key === 'string') {
      onReject(key)
      return null
    }
    const verification = verifySignature(token, key).then((claims) => {
      pending.delete(token)
      if (claims !== null) cache.set(token, claims)
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
