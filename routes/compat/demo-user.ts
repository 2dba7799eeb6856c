import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { BearerSecurity, Uuid } from '../../src/schemas/common'
import { Credentials, UserPatch } from '../../src/schemas/users'
import { JWT_EXAMPLE } from '../../src/schemas/tokens'
import { bearerToken } from '../../src/bearer'
import { commonErrors, compatRoute, demoClaims, messageErrors, seedErrorHandler } from './shared'
import { InvalidTokenError } from '../../src/errors'
import { requestContext } from '../../src/request-context'

const INVALID = 'Invalid or expired token'

const Renewed = (message: string, description: string) => Type.Object({
  message: Type.Literal(message),
  token: Type.String({ description: 'the renewed token; the one sent is now revoked', examples: [JWT_EXAMPLE] })
}, { description })

/**
 * Seed 000, "Flask JWT Authentication API Demo": user CRUD on /user. GET and PUT renew the
 * token they are called with (revoke it, answer a fresh one); DELETE kills every token.
 */
const demoUser: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, sessions } = fastify
  fastify.setErrorHandler(seedErrorHandler('message'))

  // The seed's own check and messages ("Token is missing" / "Invalid or expired token"),
  // on request: the token is checked before the body is read.
  const requireToken = async (request: FastifyRequest) => {
    const { claims, profile } = await demoClaims(fastify, bearerToken(request))
    request.auth = claims
    request.profile = profile
  }
  // The user was deleted after its token was checked.
  const gone = () => new InvalidTokenError(INVALID)

  fastify.post('/user', {
    schema: {
      ...compatRoute,
      operationId: 'compatDemoCreateUser',
      summary: 'Create an account (from the Flask JWT Authentication API Demo); use POST /auth/register',
      body: Type.Ref(Credentials),
      response: {
        201: Type.Object({ message: Type.Literal('User created successfully') }, {
          description: 'The account is created'
        }),
        ...messageErrors({
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
    return reply.status(201).send({ message: 'User created successfully' as const })
  })

  fastify.get('/user', {
    onRequest: requireToken,
    schema: {
      ...compatRoute,
      operationId: 'compatDemoGetUser',
      summary: 'The current user, and a renewed token (from the Flask JWT Authentication API Demo); use GET /users/me',
      description: '`id` is the user\'s UUID (the seed had an integer).',
      security: BearerSecurity,
      response: {
        200: Type.Object({
          user: Type.Object({ id: Uuid(), username: Type.String({ examples: ['alice'] }) }),
          token: Type.String({ description: 'the renewed token; the one sent is now revoked', examples: [JWT_EXAMPLE] })
        }, { description: 'The user, and the renewed token' }),
        ...messageErrors({
          401: 'Token is missing',
          429: 'Too many attempts; try again later',
          503: 'Revocation store unavailable'
        })
      }
    }
  }, async (request) => {
    const { id, username } = request.profile!
    const fresh = await sessions.renewAccessToken(request.auth!)
    return { user: { id, username }, token: fresh.token }
  })

  fastify.put('/user', {
    onRequest: requireToken,
    schema: {
      ...compatRoute,
      operationId: 'compatDemoUpdateUser',
      summary: 'Change the username and/or password, and renew the token (from the Flask JWT Authentication API Demo)' +
        '; use PATCH /users/me',
      description: 'A rename works as in the seed. Unlike the seed, a password change also needs current_password ' +
        '(400 without it, 403 when it is wrong; nothing changes either way), so a stolen access token cannot take ' +
        'the account over; wrong answers are limited like failed logins (429). A password change revokes every ' +
        'other session of the user.',
      security: BearerSecurity,
      body: Type.Ref(UserPatch),
      response: {
        200: Renewed('User updated successfully', 'The user is changed; here is the renewed token'),
        ...messageErrors({
          400: 'current_password is required to change the password',
          401: INVALID,
          403: 'current_password is wrong',
          409: 'Username is already taken',
          429: 'Too many attempts; try again later',
          503: 'Revocation store unavailable'
        }),
        ...commonErrors(413, 415)
      }
    }
  }, async (request, reply) => {
    const claims = request.auth!
    const { username, password, current_password: currentPassword } = request.body
    const change = { username, password, currentPassword }
    // The token renews on use (429 over the renewal cap, before anything changes): consumed
    // in the change's own transaction, so of parallel requests with one token only the one
    // that consumed it changes the account.
    const { renewal, complete } = await sessions.prepareRenewal(claims)
    const user = await accounts.update(claims.sub, claims.sid, change, requestContext(request, reply), renewal)
    if (user === undefined) throw gone()
    const fresh = await complete()
    return { message: 'User updated successfully' as const, token: fresh.token }
  })

  fastify.delete('/user', {
    onRequest: requireToken,
    schema: {
      ...compatRoute,
      operationId: 'compatDemoDeleteUser',
      summary: 'Delete the account; every token of it stops working (from the Flask JWT Authentication API Demo)' +
        '; use DELETE /users/me',
      security: BearerSecurity,
      response: {
        200: Type.Object({ message: Type.Literal('User deleted successfully') }, {
          description: 'The account and every token of it are gone'
        }),
        ...messageErrors({ 401: INVALID, 503: 'Revocation store unavailable' }),
        ...commonErrors(413, 415)
      }
    }
  }, async (request, reply) => {
    if (!(await accounts.remove(request.auth!.sub, requestContext(request, reply)))) throw gone()
    return { message: 'User deleted successfully' as const }
  })
}

export default demoUser
