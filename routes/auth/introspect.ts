import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponse, errors } from '../../src/schemas/common'
import { IntrospectRequest, IntrospectResponse } from '../../src/schemas/tokens'
import { InvalidTokenError } from '../../src/errors'

const introspect: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/introspect', {
    schema: {
      operationId: 'introspect',
      tags: ['auth'],
      summary: 'Is this access token active? (RFC 7662 style)',
      description: 'Anything that is not an active access token of a live user (malformed, expired, revoked, a ' +
        'refresh token) answers only {"active": false}.',
      body: Type.Ref(IntrospectRequest),
      response: {
        200: IntrospectResponse,
        400: errorResponse(400, 'The body is not {"token": "..."}', 'token is required', 'FST_ERR_VALIDATION'),
        ...errors(413, 415, 503)
      }
    }
  }, async (request) => {
    let resolved
    try {
      resolved = await fastify.resolveAccessToken(request.body.token)
    } catch (err) {
      if (err instanceof InvalidTokenError) return { active: false as const }
      throw err
    }
    const { claims, profile } = resolved
    return {
      active: true as const,
      sub: claims.sub,
      username: profile.username,
      sid: claims.sid,
      jti: claims.jti,
      iat: claims.iat,
      exp: claims.exp
    }
  })
}

export default introspect
