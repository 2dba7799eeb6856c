import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BODY_ERRORS, errors } from '../../src/schemas/common'
import { RefreshRequest, TokenPair } from '../../src/schemas/tokens'
import { requestContext } from '../../src/request-context'

const refresh: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/refresh', {
    schema: {
      operationId: 'refresh',
      tags: ['auth'],
      summary: 'Rotate a refresh token into a new token pair',
      description: 'Each refresh token works once. Presenting one that was already rotated revokes its whole session (401).',
      body: RefreshRequest,
      response: { 200: Type.Ref(TokenPair), ...errors(...BODY_ERRORS, 401, 429, 503) }
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
