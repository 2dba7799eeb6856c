import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponse, errors } from '../../src/schemas/common'
import { RefreshRequest, TokenPair } from '../../src/schemas/tokens'
import { requestContext } from '../../src/request-context'

const refresh: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/refresh', {
    schema: {
      operationId: 'refresh',
      tags: ['auth'],
      summary: 'Rotate a refresh token into a new token pair',
      description: 'Each refresh token works once. Presenting one that was already rotated revokes its whole ' +
        'session (401).',
      body: Type.Ref(RefreshRequest),
      response: {
        200: Type.Ref(TokenPair, { description: 'A new token pair; the refresh token sent no longer works' }),
        401: errorResponse(401, 'The refresh token is unknown, expired, revoked or already used (reuse revokes ' +
          'its whole session)', 'Invalid or expired refresh token'),
        400: errorResponse(400, 'The body is not {"refresh_token": "..."}', 'refresh_token is required',
          'FST_ERR_VALIDATION'),
        ...errors(413, 415, 429, 503)
      }
    }
  }, async (request, reply) => {
    // Counted before the work, valid token or not: the session store is not a free oracle.
    await fastify.rateLimits.consumeRefresh(request.ip)
    const pair = await fastify.sessions.refresh(request.body.refresh_token, requestContext(request))
    if (pair === null) return reply.unauthorized('Invalid or expired refresh token')
    return pair
  })
}

export default refresh
