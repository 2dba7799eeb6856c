import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BearerSecurity } from '../../src/schemas/common'
import { Credentials, LoginCredentials } from '../../src/schemas/users'
import { AccessToken, REFRESH_EXAMPLE } from '../../src/schemas/tokens'
import { InvalidCredentialsError } from '../../src/errors'
import { commonErrors, compatRoute, msgErrors, seedErrorHandler } from './shared'
import { requestContext } from '../../src/request-context'

const Msg = (text: string, description: string) => Type.Object({ msg: Type.Literal(text) }, { description })
const INVALID = 'Invalid or expired token'

/**
 * Seed 001, "Flask JWT Authentication Template": /register, /login, /protected and
 * DELETE /logout, with its `{msg}` bodies. Adapters over accounts and sessions.
 */
const template: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, sessions } = fastify
  fastify.setErrorHandler(seedErrorHandler('msg'))
  // The token whole (signature, blocklist, user), on request; refusals in the {msg} shape.
  const bearerAuth = fastify.authenticate({ answer: 'error-handler' })

  fastify.post('/register', {
    schema: {
      ...compatRoute,
      operationId: 'compatTemplateRegister',
      summary: 'Create an account (from the Flask JWT Authentication Template); use POST /auth/register',
      body: Type.Ref(Credentials),
      response: {
        201: Msg('User registered successfully', 'The account is created'),
        ...msgErrors({
          400: 'Password is too common; choose another',
          409: 'Username is already taken',
          429: 'Too many attempts; try again later',
          503: 'Server busy: too many logins at once; try again shortly'
        }),
        ...commonErrors(413, 415)
      }
    }
    // throttled like POST /auth/register (inside accounts, by client IP)
  }, async (request, reply) => {
    await accounts.register(request.body.username, request.body.password, requestContext(request, reply))
    return reply.status(201).send({ msg: 'User registered successfully' as const })
  })

  fastify.post('/login', {
    schema: {
      ...compatRoute,
      operationId: 'compatTemplateLogin',
      summary: 'Log in (from the Flask JWT Authentication Template)' +
        ': a new session\'s access and refresh tokens; use POST /auth/login',
      description: 'The refresh token works on POST /auth/refresh. An unknown username and a wrong password ' +
        'get the same 401.',
      body: Type.Ref(LoginCredentials),
      response: {
        200: Type.Object({
          access_token: AccessToken,
          refresh_token: Type.String({
            description: 'opaque; rotated by POST /auth/refresh',
            examples: [REFRESH_EXAMPLE]
          })
        }, { description: 'A new session: its access token and refresh token' }),
        ...msgErrors({
          400: 'password is required',
          401: 'Bad username or password',
          403: 'Account disabled',
          429: 'Too many attempts; try again later',
          503: 'Server busy: too many logins at once; try again shortly'
        }),
        ...commonErrors(413, 415)
      }
    }
    // throttled like POST /auth/login (inside accounts, per client IP and per account)
  }, async (request, reply) => {
    // No second step here: an account with TOTP gets 401 "Two-factor authentication required: use POST /auth/login".
    const { username, password } = request.body
    const login = await accounts.login(username, password, requestContext(request, reply), { mfa: 'refuse' })
    if (login === null || !('tokens' in login)) throw new InvalidCredentialsError('Bad username or password')
    return login.tokens
  })

  fastify.get('/protected', {
    onRequest: bearerAuth,
    schema: {
      ...compatRoute,
      operationId: 'compatTemplateProtected',
      summary: 'Who the bearer token belongs to (from the Flask JWT Authentication Template); use GET /users/me',
      security: BearerSecurity,
      response: {
        200: Type.Object({ logged_in_as: Type.String({ examples: ['alice'] }) }, {
          description: 'The username of the token\'s user'
        }),
        ...msgErrors({ 401: INVALID, 503: 'Revocation store unavailable' })
      }
    }
  }, async (request) => ({ logged_in_as: request.profile!.username }))

  fastify.delete('/logout', {
    onRequest: bearerAuth,
    schema: {
      ...compatRoute,
      operationId: 'compatTemplateLogout',
      summary: 'Log out (from the Flask JWT Authentication Template)' +
        ': the token\'s whole session is revoked; use POST /auth/logout',
      security: BearerSecurity,
      response: {
        200: Msg('Successfully logged out', 'The session is revoked'),
        ...msgErrors({ 401: INVALID, 503: 'Revocation store unavailable' }),
        ...commonErrors(413, 415)
      }
    }
  }, async (request) => {
    const { sub, sid } = request.auth!
    await sessions.revoke(sid, 'logout')
    await fastify.audit.record({ event: 'logout', userId: sub, sessionId: sid }, requestContext(request))
    return { msg: 'Successfully logged out' as const }
  })
}

export default template
