import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { BODY_ERRORS, errors } from '../../src/schemas/common'
import { IntrospectRequest, IntrospectResponse } from '../../src/schemas/tokens'
import { InvalidTokenError } from '../../src/errors'

const introspect: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/introspect', {
    schema: {
      operationId: 'introspect',
      tags: ['auth'],
      summary: 'Is this access token active? (RFC 7662 style)',
      description: 'Anything that is not an active access token of a live user (malformed, expired, revoked, a refresh token) answers only {"active": false}.',
      body: IntrospectRequest,
      response: { 200: IntrospectResponse, ...errors(...BODY_ERRORS, 503) }
    }
  }, async (request) => {
    let claims
    try {
      claims = await fastify.resolveAccessToken(request.body.token)
    } catch (err) {
      if (err instanceof InvalidTokenError) return { active: false as const }
      throw err
    }
    const user = await fastify.usersRepository.findProfile(claims.sub)
    if (user === undefined) return { active: false as const }
    return { active: true as const, sub: claims.sub, username: user.username, sid: claims.sid, jti: claims.jti, iat: claims.iat, exp: claims.exp }
  })
}

export default introspect
