import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { StringEnum } from '../src/schemas/common'

/**
 * Long enough that downstream verifiers do not ask on every token, short enough that a key
 * added to JWT_KEYS_FILE is everywhere soon after the roll (README: "Signing keys and rotation").
 */
export const JWKS_MAX_AGE = 300

// Public members only: the serializer drops anything else, so a private member (d, p, q...)
// could not leave even if one reached the set.
const PublicJwk = Type.Object({
  kty: StringEnum(['OKP', 'EC', 'RSA']),
  crv: Type.Optional(Type.String({ description: 'OKP and EC keys' })),
  x: Type.Optional(Type.String({ description: 'OKP and EC keys' })),
  y: Type.Optional(Type.String({ description: 'EC keys' })),
  n: Type.Optional(Type.String({ description: 'RSA keys' })),
  e: Type.Optional(Type.String({ description: 'RSA keys' })),
  kid: Type.String(),
  alg: StringEnum(['EdDSA', 'ES256', 'RS256']),
  use: Type.Literal('sig')
}, { title: 'PublicJwk', additionalProperties: false })

const JwkSet = Type.Object({
  keys: Type.Array(PublicJwk, {
    description: 'every key that verifies access tokens (the first one signs new ones); empty with HS256'
  })
}, { title: 'JwkSet', description: 'The public keys (none with HS256)', additionalProperties: false })

const wellKnown: FastifyPluginAsyncTypebox = async (fastify) => {
  const cacheControl = `public, max-age=${JWKS_MAX_AGE}`
  fastify.get('/.well-known/jwks.json', {
    schema: {
      operationId: 'jwks',
      tags: ['keys'],
      summary: 'Public keys that verify access tokens (JWK Set, RFC 7517)',
      description: 'With JWT_ALG EdDSA, ES256 or RS256: the public part of every key in JWT_KEYS_FILE. With ' +
        'HS256: no keys (a shared secret is never published).',
      response: { 200: JwkSet }
    }
  }, async (_request, reply) => {
    // replaces the no-store every answer gets (plugins/app/http.ts): public keys may be cached
    reply.header('cache-control', cacheControl)
    return fastify.tokens.jwks
  })
}

export default wellKnown
