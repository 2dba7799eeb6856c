import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BearerSecurity, errors, NoContent } from '../../src/schemas/common'
import { User, UserPatch } from '../../src/schemas/users'
import { toUser } from '../../plugins/app/accounts'
import { InvalidTokenError } from '../../src/errors'
import { requestContext } from '../../src/request-context'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, usersRepository } = fastify

  fastify.get('/me', {
    schema: {
      operationId: 'getMe',
      tags: ['users'],
      summary: 'The current user',
      security: BearerSecurity,
      response: { 200: Type.Ref(User), ...errors(401, 503) }
    }
  }, async (request) => {
    const user = await usersRepository.findProfile(request.auth!.sub)
    if (user === undefined) throw new InvalidTokenError('User no longer exists')
    return toUser(user)
  })

  fastify.patch('/me', {
    schema: {
      operationId: 'updateMe',
      tags: ['users'],
      summary: 'Change the username and/or the password',
      description: 'A password change needs current_password (403 when wrong) and revokes every other session of the user.',
      security: BearerSecurity,
      body: UserPatch,
      response: { 200: Type.Ref(User), ...errors(400, 401, 403, 409, 413, 415, 503) }
    }
  }, async (request, reply) => {
    const { username, password, current_password: currentPassword } = request.body
    if (username === undefined && password === undefined) return reply.badRequest('Nothing to change: give username and/or password')
    const claims = request.auth!
    const user = await accounts.update(claims.sub, claims.sid, { username, password, currentPassword }, requestContext(request, reply))
    if (user === undefined) throw new InvalidTokenError('User no longer exists')
    return toUser(user)
  })

  fastify.delete('/me', {
    schema: {
      operationId: 'deleteMe',
      tags: ['users'],
      summary: 'Delete the account; every token of it stops working',
      security: BearerSecurity,
      response: { 204: NoContent, ...errors(401, 503) }
    }
  }, async (request, reply) => {
    const deleted = await accounts.remove(request.auth!.sub, requestContext(request, reply))
    if (!deleted) throw new InvalidTokenError('User no longer exists')
    return reply.status(204).send(null)
  })
}

export default me
