import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BearerSecurity, errorResponse, errors, NoContent } from '../../src/schemas/common'
import {
  COMMON_PASSWORD_MESSAGE, CURRENT_PASSWORD_REQUIRED, NOTHING_TO_CHANGE, toUser, User, UserPatch
} from '../../src/schemas/users'
import { UserGoneError } from '../../src/errors'
import { requestContext } from '../../src/request-context'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts } = fastify

  fastify.get('/me', {
    schema: {
      operationId: 'getMe',
      tags: ['users'],
      summary: 'The current user',
      security: BearerSecurity,
      response: { 200: Type.Ref(User, { description: 'The user the access token belongs to' }), ...errors(401, 503) }
    }
  }, async (request) => toUser(request.profile!))

  fastify.patch('/me', {
    schema: {
      operationId: 'updateMe',
      tags: ['users'],
      summary: 'Change the username and/or the password',
      description: 'Give username, password, or both. A password change needs current_password (403 when wrong) ' +
        'and revokes every other session of the user; this session stays logged in. Wrong current_password answers ' +
        'are limited like failed logins, per account and per session (429 with Retry-After).',
      security: BearerSecurity,
      body: Type.Ref(UserPatch),
      response: {
        200: Type.Ref(User, { description: 'The user, changed' }),
        400: errorResponse(400, `The body breaks a rule: neither username nor password ("${NOTHING_TO_CHANGE}"), ` +
          `password without current_password ("${CURRENT_PASSWORD_REQUIRED}"), a password that is too common ` +
          `("${COMMON_PASSWORD_MESSAGE}"), or a field out of its schema`,
        CURRENT_PASSWORD_REQUIRED, 'FST_ERR_VALIDATION'),
        403: errorResponse(403, 'current_password is wrong; nothing was changed', 'current_password is wrong'),
        ...errors(401, 409, 413, 415, 429, 503)
      }
    }
  }, async (request, reply) => {
    const { username, password, current_password: currentPassword } = request.body
    const claims = request.auth!
    const change = { username, password, currentPassword }
    const user = await accounts.update(claims.sub, claims.sid, change, requestContext(request, reply))
    if (user === undefined) throw new UserGoneError() // deleted since the token was checked
    return toUser(user)
  })

  fastify.delete('/me', {
    schema: {
      operationId: 'deleteMe',
      tags: ['users'],
      summary: 'Delete the account; every token of it stops working',
      security: BearerSecurity,
      response: {
        204: NoContent('The account and every session of it are gone; the username is free again'),
        ...errors(401, 503)
      }
    }
  }, async (request, reply) => {
    const deleted = await accounts.remove(request.auth!.sub, requestContext(request, reply))
    if (!deleted) throw new UserGoneError() // deleted since the token was checked
    return reply.status(204).send(null)
  })
}

export default me
