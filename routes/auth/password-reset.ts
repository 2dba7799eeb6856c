import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponse, errors, NoContent } from '../../src/schemas/common'
import { PasswordResetRequest } from '../../src/schemas/accounts'
import { COMMON_PASSWORD_MESSAGE } from '../../src/schemas/users'
import { requestContext } from '../../src/request-context'

const passwordReset: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/password/reset', {
    schema: {
      operationId: 'resetPassword',
      tags: ['auth'],
      summary: 'Set a new password with a reset token an admin issued',
      description: 'No bearer token: the reset token is the proof. It works once, for 900 s. The password rules ' +
        'apply. Every session of the user is revoked.',
      body: Type.Ref(PasswordResetRequest),
      response: {
        204: NoContent('The password is set; every session of the user is revoked'),
        400: errorResponse(400, 'A reset token that is unknown, used or expired ("Invalid or expired reset token"), ' +
          `a password that is too common ("${COMMON_PASSWORD_MESSAGE}"), or a field out of its schema`,
        'Invalid or expired reset token'),
        ...errors(413, 415, 503)
      }
    }
  }, async (request, reply) => {
    const { reset_token: token, new_password: password } = request.body
    await fastify.accounts.resetPassword(token, password, requestContext(request, reply))
    return reply.status(204).send(null)
  })
}

export default passwordReset
