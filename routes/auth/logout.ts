import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { BearerSecurity, errors, NoContent } from '../../src/schemas/common'
import { LogoutRequest } from '../../src/schemas/tokens'
import { InvalidTokenError } from '../../src/errors'
import { requestContext } from '../../src/request-context'

const logout: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/logout', {
    onRequest: fastify.authenticate,
    preHandler: fastify.checkRevocation,
    // The body is optional: no body means the default scope.
    preValidation: async (request) => { request.body ??= {} },
    schema: {
      operationId: 'logout',
      tags: ['auth'],
      summary: 'Log out this session, or every session of the user',
      description: 'scope "session" (the default; the body may be omitted) revokes this session: its access and refresh tokens. scope "all" revokes every session of the user.',
      security: BearerSecurity,
      body: LogoutRequest,
      response: { 204: NoContent, ...errors(400, 401, 413, 415, 503) }
    }
  }, async (request, reply) => {
    const claims = request.auth!
    if (await fastify.usersRepository.findProfile(claims.sub) === undefined) throw new InvalidTokenError('User no longer exists')
    const scope = request.body?.scope ?? 'session'
    if (scope === 'all') {
      const revoked = await fastify.sessions.revokeAllOfUser(claims.sub, 'logout_all')
      await fastify.audit.record({ event: 'logout.all', userId: claims.sub, sessionsRevoked: revoked }, requestContext(request))
    } else {
      await fastify.sessions.revoke(claims.sid, 'logout')
      await fastify.audit.record({ event: 'logout', userId: claims.sub, sessionId: claims.sid }, requestContext(request))
    }
    return reply.status(204).send(null)
  })
}

export default logout
