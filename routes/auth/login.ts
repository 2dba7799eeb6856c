import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponse, errors } from '../../src/schemas/common'
import { LoginCredentials } from '../../src/schemas/users'
import { TokenPair } from '../../src/schemas/tokens'
import { MfaChallenge } from '../../src/schemas/accounts'
import { requestContext } from '../../src/request-context'
import { InvalidCredentialsError } from '../../src/errors'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/login', {
    schema: {
      operationId: 'login',
      tags: ['auth'],
      summary: 'Log in: start a session and get a token pair',
      description: 'An unknown username and a wrong password get the same 401, after the same work. An account ' +
        'with two-factor authentication gets 202 and an mfa_token instead of tokens: finish with POST /auth/login/mfa.',
      body: Type.Ref(LoginCredentials),
      response: {
        200: Type.Ref(TokenPair, { description: 'A new session: its access token and refresh token' }),
        202: Type.Ref(MfaChallenge, {
          description: 'The password is right and the account has TOTP: no tokens yet; send a code with the ' +
            'mfa_token to POST /auth/login/mfa'
        }),
        401: errorResponse(401, 'Wrong username or password (the same answer for both)',
          'Invalid username or password'),
        403: errorResponse(403, 'The right password of an account an admin has disabled (a wrong one gets the 401)',
          'Account disabled'),
        400: errorResponse(400, 'The body is not an object of two non-empty strings, username and password',
          'username is required', 'FST_ERR_VALIDATION'),
        503: errorResponse(503, 'Password hashing is overloaded (with Retry-After), or the database is unavailable; ' +
          'nothing was changed', 'Server busy: too many logins at once; try again shortly'),
        ...errors(413, 415, 429)
      }
    }
    // throttled by fastify.rateLimits (inside accounts): see plugins/app/rate-limits.ts
  }, async (request, reply) => {
    const { username, password } = request.body
    const login = await fastify.accounts.login(username, password, requestContext(request, reply))
    if (login === null) throw new InvalidCredentialsError()
    if ('mfa' in login) {
      return reply.status(202).send({ mfa_required: true, mfa_token: login.mfa.token, expires_in: login.mfa.expiresIn })
    }
    return login.tokens
  })
}

export default login
