import type { AccessClaims } from '../schemas/tokens'

export type { AccessClaims }

/** Why a token was refused, for metrics: reported through `onReject`, only on refusals. */
export type TokenRejection = 'malformed' | 'bad_signature' | 'expired'

/** The `typ` header of every access token we sign (RFC 9068). */
export const ACCESS_TOKEN_TYP = 'at+jwt'
/** Longer texts are refused before anything reads them. */
export const MAX_TOKEN_LENGTH = 4096
/** The claims every access token carries (fast-jwt and jose are told to require them too). */
export const REQUIRED_CLAIMS = ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud']

/** Verified claims, with the `nbf` that a cache hit re-checks. */
export type VerifiedClaims = AccessClaims & { nbf?: number }

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128

/**
 * The claim checks every verifier makes once the signature holds: a JSON object with string
 * sub/sid/jti, integer iat/exp, exactly our iss and aud (an array, even one that contains
 * ours, is refused), not expired, and no nbf in the future.
 */
export function claimsOf (
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

/** A fresh copy for the caller (who may keep or change it): the five claims, without nbf. */
export const accessClaims = (c: VerifiedClaims): AccessClaims =>
  ({ sub: c.sub, sid: c.sid, jti: c.jti, iat: c.iat, exp: c.exp })

export const secondsNow = () => Math.floor(Date.now() / 1000)
