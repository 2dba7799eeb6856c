import jwt, { type FastifyJWTOptions } from '@fastify/jwt'
import type { FastifyInstance } from 'fastify'

/**
 * @fastify/jwt signs the access tokens: HS256 only, `typ: at+jwt`, our `iss`/`aud`.
 * Its verifier is configured just as strictly (pinned algorithm, issuer, audience, required
 * claims, no cache), but the hot path verifies with plugins/app/tokens.ts: see there why.
 */
export const autoConfig = (fastify: FastifyInstance): FastifyJWTOptions => {
  const { jwt: cfg, accessTokenTtl } = fastify.config
  return {
    secret: cfg.secret,
    decoratorName: 'jwtPayload',
    sign: {
      algorithm: 'HS256',
      iss: cfg.issuer,
      aud: cfg.audience,
      expiresIn: `${accessTokenTtl}s`,
      // fast-jwt writes `typ` into the header
      ...({ typ: 'at+jwt' } as object)
    },
    verify: {
      algorithms: ['HS256'],
      allowedIss: cfg.issuer,
      allowedAud: cfg.audience,
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud'],
      cache: false
    }
  }
}

export default jwt
