import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BearerSecurity, errorResponse, errors, NoContent } from '../../src/schemas/common'
import { LogoutRequest } from '../../src/schemas/tokens'

import { requestContext } from '../../src/request-context'

const logout: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/logout', {
    // The token is checked whole (signature, blocklist, user) before the body is read.
    onRequest: fastify.authenticate(),
    // The body is optional: no body means the default scope.
    preValidation: async (request) => { request.body ??= {} },
    schema: {
      operationId: 'logout',
      tags: ['auth'],
      summary: 'Log out this session, or every session of the user',
      description: 'scope "session" (the default; the body may be omitted) revokes this session: its access and ' +
        'refresh tokens. scope "all" revokes every session of the user.',
      security: BearerSecurity,
      body: Type.Ref(LogoutRequest),
      'x-optional-body': true,
      response: {
        204: NoContent('Logged out: the session (or every session) is revoked'),
        400: errorResponse(400, 'The body is not {} or {"scope": "session" | "all"}',
          'scope must be one of: "session", "all"', 'FST_ERR_VALIDATION'),
        ...errors(401, 413, 415, 503)
      }
    }
  }, async (request, reply) => {
    const claims = request.auth!
    const scope = request.body?.scope ?? 'session'
    if (scope === 'all') {
      const revoked = await fastify.sessions.revokeAllOfUser(claims.sub, 'logout_all')
      const userId = claims.sub
      await fastify.audit.record({ event: 'logout.all', userId, sessionsRevoked: revoked }, requestContext(request))
    } else {
      await fastify.sessions.revoke(claims.sid, 'logout')
      const { sub: userId, sid: sessionId } = claims
      await fastify.audit.record({ event: 'logout', userId, sessionId }, requestContext(request))
    }
    return reply.status(204).send(null)
  })
}

export default logout
