import { Type } from '@sinclair/typebox'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../../src/schemas/common'
import { classifyError, errorBody, loggable } from '../../plugins/app/http'
import type { AccessClaims } from '../../plugins/app/tokens'
import { InvalidTokenError } from '../../src/errors'

// Helpers for the compat route files, not a route plugin: autoload skips this file.
export const autoload = false

/** Error bodies of the 001 seed (Flask-JWT-Extended) and of the 000 seed. */
export const MsgError = Type.Object({ msg: Type.String() }, { title: 'CompatMsgError' })
export const MessageError = Type.Object({ message: Type.String() }, { title: 'CompatMessageError' })

/** Errors that keep the service's common shape on the compat routes too. */
export const commonErrors = (...codes: Array<413 | 415>) => errors(...codes)

export const compatRoute = { tags: ['compat'], deprecated: true }

/**
 * Every error of a compat route in its seed's shape (`{msg}` or `{message}`), with the
 * status, message and Retry-After the service API would give. 404, 413 and 415 keep the
 * common shape, as docs/api.md says.
 */
export function seedErrorHandler (key: 'msg' | 'message') {
  return function (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    const { statusCode, message, code, retryAfter } = classifyError(error)
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    if (statusCode >= 500) request.log.error(loggable(error), 'request failed')
    else request.log.info({ statusCode, code: code ?? error.code }, message)
    if (statusCode === 404 || statusCode === 413 || statusCode === 415) {
      return reply.status(statusCode).send(errorBody(statusCode, message, code))
    }
    return reply.status(statusCode).send({ [key]: message })
  }
}

/**
 * The 000 seed's token check, with its two messages: a live access token (signature,
 * expiry, blocklist) of a live session, or 401; 503 when the revocation store is down.
 * The session check matters because 000 tokens renew themselves: without it, renewal would
 * stretch a session past its expiry (and, once pruned, out of reach of logout).
 */
export async function demoClaims (fastify: FastifyInstance, token: string | undefined): Promise<AccessClaims> {
  if (token === undefined || token === '') throw new InvalidTokenError('Token is missing')
  let claims: AccessClaims
  try {
    claims = await fastify.resolveAccessToken(token)
  } catch (err) {
    // "revoked" and "expired" look the same to a 000 client
    if (err instanceof InvalidTokenError) throw new InvalidTokenError('Invalid or expired token')
    throw err
  }
  if (await fastify.sessions.findActive(claims.sid) === undefined) throw new InvalidTokenError('Invalid or expired token')
  return claims
}
