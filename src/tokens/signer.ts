import { randomUUID } from 'node:crypto'
import type { JwtAlg } from '../signing-keys'
import { secondsNow } from './claims'
import { withLowS } from './es256-low-s'

export interface SignedAccessToken {
  token: string
  jti: string
  exp: number
}

/** What the signer is given; `iss`, `aud`, `exp` (= iat + TTL) and the header are the signer's options. */
export interface AccessTokenPayload { sub: string, sid: string, jti: string, iat: number }

/**
 * Access tokens of every JWT_ALG, signed by one path: `sign` is @fastify/jwt's
 * `fastify.jwt.sign` (fast-jwt), configured in plugins/external/jwt.ts with the algorithm,
 * the key (its `kid` in the header), `typ: at+jwt`, `iss`, `aud` and the TTL. `iat` is given
 * here so that `exp` is known without reading the token back.
 */
export function createAccessTokenSigner (opts: {
  alg: JwtAlg
  ttl: number
  sign: (payload: AccessTokenPayload) => string
}) {
  const { sign, ttl } = opts
  // ES256 signatures come in either of two forms; the verifier accepts only the low-S one
  const finish = opts.alg === 'ES256' ? withLowS : (token: string) => token
  return function signAccessToken (sub: string, sid: string, iat = secondsNow()): SignedAccessToken {
    const jti = randomUUID()
    return { token: finish(sign({ sub, sid, jti, iat })), jti, exp: iat + ttl }
  }
}
