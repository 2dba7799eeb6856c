import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { BearerSecurity, errors, NoContent } from '../../src/schemas/common'
import { SessionList, SessionParams } from '../../src/schemas/sessions'
import { InvalidTokenError } from '../../src/errors'
import { requestContext } from '../../src/request-context'

const iso = (ms: number) => new Date(ms).toISOString()

const sessions: FastifyPluginAsyncTypebox = async (fastify) => {
  // A token whose user no longer exists is a 401, as on every protected route.
  const requireUser = async (id: string) => {
    if (await fastify.usersRepository.findProfile(id) === undefined) throw new InvalidTokenError('User no longer exists')
  }

  fastify.get('/me/sessions', {
    schema: {
      operationId: 'listSessions',
      tags: ['users'],
      summary: 'The active sessions (logins) of the current user',
      description: 'last_used_at is the time of the session\'s last login or refresh.',
      security: BearerSecurity,
      response: { 200: SessionList, ...errors(401, 503) }
    }
  }, async (request) => {
    const { sub, sid } = request.auth!
    await requireUser(sub)
    const list = await fastify.sessions.listActive(sub)
    return list.map((s) => ({
      id: s.id,
      created_at: iso(s.createdAt),
      last_used_at: iso(s.lastUsedAt),
      expires_at: iso(s.expiresAt),
      current: s.id === sid
    }))
  })

  fastify.delete('/me/sessions/:id', {
    schema: {
      operationId: 'revokeSession',
      tags: ['users'],
      summary: 'Revoke one of the current user\'s sessions (its access and refresh tokens)',
      security: BearerSecurity,
      params: SessionParams,
      response: { 204: NoContent, ...errors(401, 404, 503) }
    }
  }, async (request, reply) => {
    const { sub } = request.auth!
    await requireUser(sub)
    const session = await fastify.sessions.findActive(request.params.id)
    // Another user's session is "not found" too: ids of others are not confirmed.
    if (session === undefined || session.userId !== sub) return reply.notFound('Session not found')
    await fastify.sessions.revoke(session.id, 'user_revoked')
    await fastify.audit.record({ event: 'session.revoked', userId: sub, sessionId: session.id }, requestContext(request))
    return reply.status(204).send(null)
  })
}

export default sessions
