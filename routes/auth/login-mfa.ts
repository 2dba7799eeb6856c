import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponse, errors } from '../../src/schemas/common'
import { TokenPair } from '../../src/schemas/tokens'
import { MfaLoginRequest } from '../../src/schemas/accounts'
import { requestContext } from '../../src/request-context'

const loginMfa: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/login/mfa', {
    schema: {
      operationId: 'loginMfa',
      tags: ['auth'],
      summary: 'Log in, step two: the mfa_token of POST /auth/login with a TOTP code or a recovery code',
      description: 'A TOTP code is accepted once (the same code again: 401); each recovery code works once. The ' +
        'mfa_token lives 5 minutes and survives 5 wrong codes; a right code consumes it. Wrong codes count against ' +
        'the account\'s failed-login limit (429).',
      body: Type.Ref(MfaLoginRequest),
      response: {
        200: Type.Ref(TokenPair, { description: 'A new session: its access token and refresh token' }),
        400: errorResponse(400, 'The body is not an mfa_token with exactly one of code and recovery_code',
          'body must match exactly one of: {mfa_token, code}, {mfa_token, recovery_code}', 'FST_ERR_VALIDATION'),
        401: errorResponse(401, 'A wrong or already used code, or an mfa_token that is unknown, expired, used, or ' +
          'spent by 5 wrong codes (one answer for all)', 'Invalid code'),
        503: errorResponse(503, 'The database or the revocation store is unavailable, or the server cannot read ' +
          'TOTP secrets (MFA_ENCRYPTION_KEY); nothing was changed', 'Database unavailable'),
        ...errors(413, 415, 429)
      }
    }
  }, async (request, reply) => {
    const body = request.body
    const input = 'code' in body ? { code: body.code } : { recoveryCode: body.recovery_code }
    return await fastify.accounts.loginMfa(body.mfa_token, input, requestContext(request, reply))
  })
}

export default loginMfa
