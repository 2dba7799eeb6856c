import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BODY_ERRORS, errors } from '../../src/schemas/common'
import { LoginCredentials } from '../../src/schemas/users'
import { TokenPair } from '../../src/schemas/tokens'
import { requestContext } from '../../src/request-context'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/login', {
    schema: {
      operationId: 'login',
      tags: ['auth'],
      summary: 'Log in: start a session and get a token pair',
      description: 'An unknown username and a wrong password get the same 401, after the same work.',
      body: LoginCredentials,
      response: { 200: Type.Ref(TokenPair), ...errors(...BODY_ERRORS, 401, 429, 503) }
    }
    // throttled by fastify.rateLimits (inside accounts): see plugins/app/rate-limits.ts
  }, async (request, reply) => {
    const login = await fastify.accounts.login(request.body.username, request.body.password, requestContext(request, reply))
    if (login === null) return reply.unauthorized('Invalid username or password')
    return login.tokens
  })
}

export default login
