import { createPublicKey } from 'node:crypto'
import jwt, { type FastifyJWTOptions } from '@fastify/jwt'
import type { FastifyInstance } from 'fastify'

/**
 * @fastify/jwt (fast-jwt) signs every access token (plugins/app/tokens.ts calls
 * `fastify.jwt.sign`): HS256 with JWT_SECRET, or an asymmetric JWT_ALG (EdDSA, ES256, RS256)
 * with the first key of JWT_KEYS_FILE, its `kid` in the header; always `typ: at+jwt`, our
 * `iss`/`aud` and `exp` = iat + ACCESS_TOKEN_TTL. It verifies nothing: every token is verified
 * by src/tokens/ (HS256 on node:crypto, the others with jose; see there why), so no `verify`
 * options are given here and request.jwtVerify() is not used anywhere.
 */
export const autoConfig = (fastify: FastifyInstance): FastifyJWTOptions => {
  const { jwt: cfg, accessTokenTtl } = fastify.config
  const signer = cfg.alg === 'HS256' ? undefined : cfg.keys[0]
  return {
    secret: signer === undefined
      ? cfg.secret
      : {
          private: signer.privateKeyPem,
          public: createPublicKey(signer.privateKeyPem).export({ format: 'pem', type: 'spki' }) as string
        },
    decoratorName: 'jwtPayload',
    sign: {
      algorithm: cfg.alg,
      ...(signer === undefined ? {} : { kid: signer.kid }),
      iss: cfg.issuer,
      aud: cfg.audience,
      expiresIn: `${accessTokenTtl}s`,
      // fast-jwt writes `typ` into the header
      ...({ typ: 'at+jwt' } as object)
    }
  }
}

export default jwt
