import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BearerSecurity, errorResponse, errors, NoContent } from '../../src/schemas/common'
import {
  RecoveryCodes, TotpConfirmRequest, TotpDisableRequest, TotpEnrolment, TotpEnrolmentRequest
} from '../../src/schemas/accounts'
import { requestContext } from '../../src/request-context'
import { MFA_ALREADY_ENABLED, MFA_NOT_ENABLED, MFA_NOTHING_TO_CONFIRM } from '../../plugins/app/mfa'

// The current user's TOTP: enrol, confirm (TOTP required from then on), turn off.
const mfa: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/me/mfa/totp', {
    schema: {
      operationId: 'enrolTotp',
      tags: ['users'],
      summary: 'Start a TOTP enrolment: a new secret for an authenticator app',
      description: 'Needs the current password. TOTP is not required at login until POST /users/me/mfa/totp/confirm; ' +
        'a new enrolment replaces one not yet confirmed.',
      security: BearerSecurity,
      body: Type.Ref(TotpEnrolmentRequest),
      response: {
        200: TotpEnrolment,
        403: errorResponse(403, 'current_password is wrong (or enrolment is switched off: MFA_ENROLMENT=off)',
          'current_password is wrong'),
        409: errorResponse(409, 'TOTP is already on', MFA_ALREADY_ENABLED),
        ...errors(400, 401, 413, 415, 503)
      }
    }
  }, async (request, reply) => {
    const enrolment = await fastify.mfa.enrol(request.auth!.sub, request.body.current_password,
      requestContext(request, reply))
    return { secret: enrolment.secret, otpauth_uri: enrolment.otpauthUri }
  })

  fastify.post('/me/mfa/totp/confirm', {
    schema: {
      operationId: 'confirmTotp',
      tags: ['users'],
      summary: 'Turn TOTP on with a code of the enrolment: the recovery codes, shown once',
      description: 'From now on a login needs a code. Every other session of the user is revoked; this one stays.',
      security: BearerSecurity,
      body: Type.Ref(TotpConfirmRequest),
      response: {
        200: RecoveryCodes,
        400: errorResponse(400, 'The code is not the one the enrolment\'s secret gives now', 'Invalid code'),
        409: errorResponse(409, 'No enrolment is waiting (none started, or TOTP is on already)',
          MFA_NOTHING_TO_CONFIRM),
        ...errors(401, 413, 415, 503)
      }
    }
  }, async (request, reply) => {
    const { sub, sid } = request.auth!
    const codes = await fastify.mfa.confirm(sub, sid, request.body.code, requestContext(request, reply))
    return { recovery_codes: codes }
  })

  fastify.delete('/me/mfa/totp', {
    schema: {
      operationId: 'disableTotp',
      tags: ['users'],
      summary: 'Turn TOTP off, with the current password and a TOTP code or a recovery code',
      security: BearerSecurity,
      body: Type.Ref(TotpDisableRequest),
      response: {
        204: NoContent('TOTP is off: its secret and recovery codes are deleted'),
        403: errorResponse(403, 'current_password is wrong, or the code is wrong or used already; nothing changed',
          'Invalid code'),
        409: errorResponse(409, 'TOTP is not on', MFA_NOT_ENABLED),
        ...errors(400, 401, 413, 415, 503)
      }
    }
  }, async (request, reply) => {
    const { current_password: password, code } = request.body
    await fastify.mfa.disable(request.auth!.sub, password, code, requestContext(request, reply))
    return reply.status(204).send(null)
  })
}

export default mfa
