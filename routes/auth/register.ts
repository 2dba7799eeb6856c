import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { BODY_ERRORS, errors } from '../../src/schemas/common'
import { Credentials, RegisteredUser } from '../../src/schemas/users'
import { requestContext } from '../../src/request-context'

const register: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/register', {
    schema: {
      operationId: 'register',
      tags: ['auth'],
      summary: 'Create an account',
      description: 'Usernames are unique case-insensitively. Passwords are SHA-256 pre-hashed before bcrypt, so every byte counts; the most common passwords are refused.',
      body: Credentials,
      response: { 201: RegisteredUser, ...errors(...BODY_ERRORS, 409, 429, 503) }
    }
    // throttled by fastify.rateLimits (inside accounts): see plugins/app/rate-limits.ts
  }, async (request, reply) => {
    const user = await fastify.accounts.register(request.body.username, request.body.password, requestContext(request, reply))
    return reply.status(201).send({ id: user.id, username: user.username, created_at: new Date(user.createdAt).toISOString() })
  })
}

export default register
