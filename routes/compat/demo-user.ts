import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { BearerSecurity } from '../../src/schemas/common'
import { Credentials, Password, Username } from '../../src/schemas/users'
import { bearerToken } from '../../plugins/app/authenticate'
import { commonErrors, compatRoute, demoClaims, MessageError, seedErrorHandler } from './shared'
import { InvalidTokenError } from '../../src/errors'
import { requestContext } from '../../src/request-context'

const Renewed = (message: string) => Type.Object({ message: Type.Literal(message), token: Type.String({ description: 'the renewed token; the one sent is now revoked' }) })

/**
 * Seed 000, "Flask JWT Authentication API Demo": user CRUD on /user. GET and PUT renew the
 * token they are called with (revoke it, answer a fresh one); DELETE kills every token.
 */
const demoUser: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, sessions } = fastify
  fastify.setErrorHandler(seedErrorHandler('message'))

  // The seed's own check and messages ("Token is missing" / "Invalid or expired token").
  const requireToken = async (request: FastifyRequest) => {
    request.auth = await demoClaims(fastify, bearerToken(request))
  }
  const gone = () => new InvalidTokenError('Invalid or expired token')

  fastify.post('/user', {
    schema: {
      ...compatRoute,
      operationId: 'compatDemoCreateUser',
      summary: 'Create an account (seed 000); use POST /auth/register',
      body: Credentials,
      response: { 201: Type.Object({ message: Type.Literal('User created successfully') }), 400: MessageError, 409: MessageError, 429: MessageError, 503: MessageError, ...commonErrors(413, 415) }
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
      summary: 'The current user, and a renewed token (seed 000); use GET /users/me',
      description: '`id` is the user\'s UUID (the seed had an integer).',
      security: BearerSecurity,
      response: {
        200: Type.Object({ user: Type.Object({ id: Type.String({ format: 'uuid' }), username: Type.String() }), token: Type.String() }),
        401: MessageError,
        503: MessageError
      }
    }
  }, async (request) => {
    const claims = request.auth!
    const user = await fastify.usersRepository.findProfile(claims.sub)
    if (user === undefined) throw gone()
    const fresh = await sessions.renewAccessToken(claims)
    return { user: { id: user.id, username: user.username }, token: fresh.token }
  })

  fastify.put('/user', {
    onRequest: requireToken,
    schema: {
      ...compatRoute,
      operationId: 'compatDemoUpdateUser',
      summary: 'Change the username and/or password, and renew the token (seed 000); use PATCH /users/me',
      description: 'A rename works as in the seed. Unlike the seed, a password change also needs current_password (400 without it, 403 when it is wrong; nothing changes either way), so a stolen access token cannot take the account over. A password change revokes every other session of the user.',
      security: BearerSecurity,
      body: Type.Object({
        username: Type.Optional(Username),
        password: Type.Optional(Password),
        current_password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'required with password' }))
      }, { additionalProperties: false, minProperties: 1 }),
      response: {
        200: Renewed('User updated successfully'),
        400: MessageError,
        401: MessageError,
        403: MessageError,
        409: MessageError,
        503: MessageError,
        ...commonErrors(413, 415)
      }
    }
  }, async (request, reply) => {
    const claims = request.auth!
    const { username, password, current_password: currentPassword } = request.body
    if (username === undefined && password === undefined) throw fastify.httpErrors.badRequest('Nothing to change: give username and/or password')
    const user = await accounts.update(claims.sub, claims.sid, { username, password, currentPassword }, requestContext(request, reply))
    if (user === undefined) throw gone()
    const fresh = await sessions.renewAccessToken(claims)
    return { message: 'User updated successfully' as const, token: fresh.token }
  })

  fastify.delete('/user', {
    onRequest: requireToken,
    schema: {
      ...compatRoute,
      operationId: 'compatDemoDeleteUser',
      summary: 'Delete the account; every token of it stops working (seed 000); use DELETE /users/me',
      security: BearerSecurity,
      response: { 200: Type.Object({ message: Type.Literal('User deleted successfully') }), 401: MessageError, 503: MessageError, ...commonErrors(413, 415) }
    }
  }, async (request, reply) => {
    if (!(await accounts.remove(request.auth!.sub, requestContext(request, reply)))) throw gone()
    return { message: 'User deleted successfully' as const }
  })
}

export default demoUser
