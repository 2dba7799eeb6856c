import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BearerSecurity, StringEnum } from '../../src/schemas/common'
import { MfaRequiredError } from '../../src/errors'
import { LoginCredentials } from '../../src/schemas/users'
import { AccessToken, JWT_EXAMPLE } from '../../src/schemas/tokens'
import { CompatTokenInput } from '../../src/schemas/compat'
import { bearerToken } from '../../src/bearer'
import { commonErrors, compatRoute, demoClaims, messageErrors, seedErrorHandler } from './shared'
import { requestContext } from '../../src/request-context'

const MFA_REQUIRED = new MfaRequiredError().message

const INVALID = 'Invalid or expired token'

/**
 * Seed 000, "Flask JWT Authentication API Demo": /authenticate_user, /validate_token and
 * POST /logout. Its tokens are renewed on use: /validate_token revokes the token it checks
 * and answers a fresh one of the same session.
 */
const demoAuth: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, sessions } = fastify
  fastify.setErrorHandler(seedErrorHandler('message'))

  fastify.post('/authenticate_user', {
    schema: {
      ...compatRoute,
      operationId: 'compatDemoAuthenticateUser',
      summary: 'Log in (from the Flask JWT Authentication API Demo)' +
        ': a new session\'s access token; use POST /auth/login',
      description: '`token` and `access_token` are the same token. An unknown username and a wrong password get ' +
        'the same 401 (the seed\'s 404 for unknown users told who has an account).',
      body: Type.Ref(LoginCredentials),
      response: {
        200: Type.Object({ token: AccessToken, access_token: AccessToken }, {
          description: 'Logged in: one token under two names'
        }),
        401: Type.Object({ error: StringEnum(['Invalid credentials', MFA_REQUIRED]) }, {
          description: 'Wrong username or password (the same answer for both); or the right password of an ' +
            `account with two-factor authentication ("${MFA_REQUIRED}")`
        }),
        ...messageErrors({
          400: 'username is required',
          403: 'Account disabled',
          429: 'Too many attempts; try again later',
          503: 'Server busy: too many logins at once; try again shortly'
        }),
        ...commonErrors(413, 415)
      }
    }
    // throttled like POST /auth/login (inside accounts, per client IP and per account)
  }, async (request, reply) => {
    const { username, password } = request.body
    // No second step here: an account with TOTP is sent to POST /auth/login, in the seed's 401 shape.
    let login
    try {
      login = await accounts.login(username, password, requestContext(request, reply), { mfa: 'refuse' })
    } catch (err) {
      if (err instanceof MfaRequiredError) return reply.status(401).send({ error: MFA_REQUIRED })
      throw err
    }
    if (login === null || !('tokens' in login)) return reply.status(401).send({ error: 'Invalid credentials' as const })
    const token = login.tokens.access_token
    return { token, access_token: token }
  })

  fastify.post('/validate_token', {
    schema: {
      ...compatRoute,
      operationId: 'compatDemoValidateToken',
      summary: 'Check a token and renew it (from the Flask JWT Authentication API Demo); use POST /auth/introspect',
      description: 'The token comes from the body, else from Authorization: Bearer. A valid token is revoked and a ' +
        'fresh one of the same session is returned: replaying the old one gets 401.',
      security: BearerSecurity,
      body: Type.Ref(CompatTokenInput),
      'x-optional-body': true,
      response: {
        200: Type.Object({
          message: Type.Literal('Token is valid'),
          token: Type.String({ description: 'the renewed token; the one sent is now revoked', examples: [JWT_EXAMPLE] })
        }, { description: 'The token was valid: here is its renewal' }),
        ...messageErrors({
          400: 'token must be a string',
          401: INVALID,
          429: 'Too many attempts; try again later',
          503: 'Revocation store unavailable'
        }),
        ...commonErrors(413, 415)
      }
    }
  }, async (request) => {
    const { claims } = await demoClaims(fastify, request.body?.token ?? bearerToken(request))
    const fresh = await sessions.renewAccessToken(claims)
    return { message: 'Token is valid' as const, token: fresh.token }
  })

  fastify.post('/logout', {
    schema: {
      ...compatRoute,
      operationId: 'compatDemoLogout',
      summary: 'Log out (from the Flask JWT Authentication API Demo)' +
        ': the token\'s whole session is revoked; use POST /auth/logout',
      description: 'The token comes from the body, else from Authorization: Bearer.',
      security: BearerSecurity,
      body: Type.Ref(CompatTokenInput),
      'x-optional-body': true,
      response: {
        200: Type.Object({ message: Type.Literal('Logged out successfully') }, {
          description: 'The session is revoked'
        }),
        ...messageErrors({ 400: 'token must be a string', 401: INVALID, 503: 'Revocation store unavailable' }),
        ...commonErrors(413, 415)
      }
    }
  }, async (request) => {
    const { claims: { sub, sid } } = await demoClaims(fastify, request.body?.token ?? bearerToken(request))
    await sessions.revoke(sid, 'logout')
    await fastify.audit.record({ event: 'logout', userId: sub, sessionId: sid }, requestContext(request))
    return { message: 'Logged out successfully' as const }
  })
}

export default demoAuth
