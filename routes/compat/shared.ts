import { Type } from '@sinclair/typebox'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../../src/schemas/common'
import { CompatMessageError, CompatMsgError } from '../../src/schemas/compat'
import { classifyError, errorBody, logErrorAnswer } from '../../src/http-errors'
import { InvalidTokenError } from '../../src/errors'

// Helpers for the compat route files, not a route plugin: autoload skips this file.
export const autoload = false

/** Errors that keep the service's common shape on the compat routes too. */
export const commonErrors = (...codes: Array<413 | 415>) => errors(...codes)

export const compatRoute = { tags: ['compat'], deprecated: true }

/** What each status means on a compat route (the seed's own shape carries the message). */
const DESCRIPTIONS: Record<number, string> = {
  400: 'The body is missing, not JSON, or breaks a rule of the schema (the message names the field and what ' +
    'is allowed)',
  401: 'The token is missing, invalid, expired or revoked, or its user no longer exists (on a login: wrong username ' +
    'or password, the same answer for both)',
  403: 'current_password is wrong (nothing was changed); on a login: the right password of a disabled account',
  409: 'The username is taken (usernames are unique regardless of case)',
  429: 'Too many attempts; Retry-After says when to try again',
  503: 'A dependency is unavailable (the revocation store, the database, or password hashing is overloaded); ' +
    'nothing was changed'
}
const RETRY_AFTER = { 'Retry-After': { type: 'integer', description: 'seconds to wait before trying again' } } as const

function seedErrors<K extends 'msg' | 'message'> (key: K, schema: typeof CompatMsgError | typeof CompatMessageError) {
  const ref = Type.Ref(schema)
  return (codes: Record<number, string>) => {
    const out: Record<number, {
      description: string
      headers?: typeof RETRY_AFTER
      content: { 'application/json': { schema: typeof ref, example: Record<K, string> } }
    }> = {}
    for (const [code, message] of Object.entries(codes)) {
      out[Number(code)] = {
        description: DESCRIPTIONS[Number(code)] ?? 'Error',
        ...(code === '429' || code === '503' ? { headers: RETRY_AFTER } : {}),
        content: { 'application/json': { schema: ref, example: { [key]: message } as Record<K, string> } }
      }
    }
    return out
  }
}

/**
 * Error responses of the 001 seed's routes (`{msg}`), each status with an example message:
 * `msgErrors({ 401: '...' })`.
 */
export const msgErrors = seedErrors('msg', CompatMsgError)
/** Error responses of the 000 seed's routes (`{message}`). */
export const messageErrors = seedErrors('message', CompatMessageError)

/**
 * Every error of a compat route in its seed's shape (`{msg}` or `{message}`), with the
 * status, message and Retry-After the service API would give. 404, 405, 413 and 415 keep the
 * common shape, as docs/api.md says.
 */
export function seedErrorHandler (key: 'msg' | 'message') {
  return function (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    const { statusCode, message, code, retryAfter } = classifyError(error)
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    logErrorAnswer(request, error, statusCode, message, code)
    if (statusCode === 404 || statusCode === 413 || statusCode === 415) {
      return reply.status(statusCode).send(errorBody(statusCode, message, code))
    }
    return reply.status(statusCode).send({ [key]: message })
  }
}

/**
 * The 000 seed's token check, with its two messages: a live access token (signature,
 * expiry, blocklist) of a live user and a live session, or 401; 503 when the revocation
 * store is down. The session check matters because 000 tokens renew themselves: without it,
 * renewal would stretch a session past its expiry (and, once pruned, out of reach of logout).
 */
export async function demoClaims (fastify: FastifyInstance, token: string | undefined) {
  if (token === undefined || token === '') throw new InvalidTokenError('Token is missing')
  let resolved
  try {
    resolved = await fastify.resolveAccessToken(token)
  } catch (err) {
    // "revoked", "expired" and "user gone" look the same to a 000 client
    if (err instanceof InvalidTokenError) throw new InvalidTokenError('Invalid or expired token')
    throw err
  }
  if (await fastify.sessions.findActive(resolved.claims.sid) === undefined) {
    throw new InvalidTokenError('Invalid or expired token')
  }
  return resolved
}
