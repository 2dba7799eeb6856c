import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BearerSecurity } from '../../src/schemas/common'
import { Credentials, LoginCredentials } from '../../src/schemas/users'
import { commonErrors, compatRoute, MsgError, seedErrorHandler } from './shared'
import { InvalidTokenError } from '../../src/errors'
import { requestContext } from '../../src/request-context'

const Msg = (text: string) => Type.Object({ msg: Type.Literal(text) })

/**
 * Seed 001, "Flask JWT Authentication Template": /register, /login, /protected and
 * DELETE /logout, with its `{msg}` bodies. Adapters over accounts and sessions.
 */
const template: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, sessions } = fastify
  fastify.setErrorHandler(seedErrorHandler('msg'))

  fastify.post('/register', {
    schema: {
      ...compatRoute,
      operationId: 'compatTemplateRegister',
      summary: 'Create an account (seed 001); use POST /auth/register',
      body: Credentials,
      response: { 201: Msg('User registered successfully'), 400: MsgError, 409: MsgError, 429: MsgError, 503: MsgError, ...commonErrors(413, 415) }
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
      summary: 'Log in (seed 001): a new session\'s access and refresh tokens; use POST /auth/login',
      description: 'The refresh token works on POST /auth/refresh. An unknown username and a wrong password get the same 401.',
      body: LoginCredentials,
      response: {
        200: Type.Object({ access_token: Type.String(), refresh_token: Type.String() }),
        400: MsgError,
        401: MsgError,
        429: MsgError,
        503: MsgError,
        ...commonErrors(413, 415)
      }
    }
    // throttled like POST /auth/login (inside accounts, per client IP and per account)
  }, async (request, reply) => {
    const login = await accounts.login(request.body.username, request.body.password, requestContext(request, reply))
    if (login === null) return reply.status(401).send({ msg: 'Bad username or password' })
    return login.tokens
  })

  fastify.get('/protected', {
    onRequest: fastify.authenticateToErrorHandler,
    preHandler: fastify.checkRevocationToErrorHandler,
    schema: {
      ...compatRoute,
      operationId: 'compatTemplateProtected',
      summary: 'Who the bearer token belongs to (seed 001); use GET /users/me',
      security: BearerSecurity,
      response: { 200: Type.Object({ logged_in_as: Type.String() }), 401: MsgError, 503: MsgError }
    }
  }, async (request) => {
    const user = await fastify.usersRepository.findProfile(request.auth!.sub)
    if (user === undefined) throw new InvalidTokenError('User no longer exists')
    return { logged_in_as: user.username }
  })

  fastify.delete('/logout', {
    onRequest: fastify.authenticateToErrorHandler,
    preHandler: fastify.checkRevocationToErrorHandler,
    schema: {
      ...compatRoute,
      operationId: 'compatTemplateLogout',
      summary: 'Log out (seed 001): the token\'s whole session is revoked; use POST /auth/logout',
      security: BearerSecurity,
      response: { 200: Msg('Successfully logged out'), 401: MsgError, 503: MsgError, ...commonErrors(413, 415) }
    }
  }, async (request) => {
    const { sub, sid } = request.auth!
    await sessions.revoke(sid, 'logout')
    await fastify.audit.record({ event: 'logout', userId: sub, sessionId: sid }, requestContext(request))
    return { msg: 'Successfully logged out' as const }
  })
}

export default template
