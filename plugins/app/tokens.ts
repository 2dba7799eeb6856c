import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { PublicJwk } from '../../src/signing-keys'
import type { AccessClaims, TokenRejection } from '../../src/tokens/claims'
import { createAccessTokenVerifier } from '../../src/tokens/hs256-verifier'
import { createAsymmetricAccessTokenVerifier, importVerificationKeys } from '../../src/tokens/asymmetric-verifier'
import { createAccessTokenSigner, type AccessTokenPayload, type SignedAccessToken } from '../../src/tokens/signer'
import { hashRefreshToken, newRefreshToken } from '../../src/tokens/refresh-tokens'

export type { AccessClaims, SignedAccessToken }

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

/**
 * Access and refresh tokens, wired from src/tokens/: every JWT_ALG signs through @fastify/jwt
 * (plugins/external/jwt.ts); HS256 verifies on node:crypto, the others with jose, each behind
 * the verified-token cache; refusals are counted by reason.
 */
export default fp(async function tokens (fastify) {
  const { jwt, accessTokenTtl } = fastify.config
  const { issuer, audience } = jwt
  const onReject = (why: TokenRejection) => { fastify.metrics.tokensRejected.inc({ reason: why }) }
  const sign = (payload: AccessTokenPayload) => fastify.jwt.sign(payload)
  const signAccessToken = createAccessTokenSigner({ alg: jwt.alg, ttl: accessTokenTtl, sign })
  let verifyAccessToken: Tokens['verifyAccessToken']
  let jwks: Tokens['jwks']
  if (jwt.alg === 'HS256') {
    verifyAccessToken = createAccessTokenVerifier({ secret: jwt.secret, issuer, audience, onReject })
    jwks = Object.freeze({ keys: Object.freeze([]) as unknown as PublicJwk[] }) // a shared secret is never published
  } else {
    // Every key of JWT_KEYS_FILE verifies; the first one signs.
    const published = jwt.keys.map((k) => Object.freeze({ ...k.publicJwk }))
    const keys = await importVerificationKeys(jwt.alg, published)
    verifyAccessToken = createAsymmetricAccessTokenVerifier({ alg: jwt.alg, keys, issuer, audience, onReject })
    jwks = Object.freeze({ keys: Object.freeze(published) as PublicJwk[] })
  }

  // The signer (fast-jwt) and the verifiers (node:crypto, jose) are separate code: a token
  // one makes that the other refuses (say, a fast-jwt release that writes its header
  // differently) stops the service here, at start, instead of answering 401 to every client.
  const probe = signAccessToken('start-up-check', randomUUID()).token
  if (await verifyAccessToken(probe) === null) {
    throw new Error(`access tokens signed with ${jwt.alg} fail this service's own verification`)
  }

  fastify.decorate('tokens', {
    signAccessToken,
    verifyAccessToken,
    jwks,
    newRefreshToken,
    hashRefreshToken
  } satisfies Tokens)
}, { name: 'tokens', dependencies: ['config', '@fastify/jwt', 'metrics'] })
