import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponse, errors } from '../../src/schemas/common'
import { COMMON_PASSWORD_MESSAGE, Credentials, RegisteredUser } from '../../src/schemas/users'
import { requestContext } from '../../src/request-context'

const register: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/register', {
    schema: {
      operationId: 'register',
      tags: ['auth'],
      summary: 'Create an account',
      description: 'Usernames are unique case-insensitively. Passwords are SHA-256 pre-hashed before bcrypt, ' +
        'so every byte counts; the most common passwords are refused.',
      body: Type.Ref(Credentials),
      response: {
        201: RegisteredUser,
        400: errorResponse(400, 'The body breaks a rule of the schema (the message names the field and what ' +
          `is allowed), or the password is one of the most common ones: "${COMMON_PASSWORD_MESSAGE}"`,
        COMMON_PASSWORD_MESSAGE),
        503: errorResponse(503, 'Password hashing is overloaded (with Retry-After), or the database is unavailable; ' +
          'nothing was changed', 'Server busy: too many logins at once; try again shortly'),
        ...errors(409, 413, 415, 429)
      }
    }
    // throttled by fastify.rateLimits (inside accounts): see plugins/app/rate-limits.ts
  }, async (request, reply) => {
    const { username, password } = request.body
    const user = await fastify.accounts.register(username, password, requestContext(request, reply))
    const createdAt = new Date(user.createdAt).toISOString()
    return reply.status(201).send({ id: user.id, username: user.username, created_at: createdAt })
  })
}

export default register
