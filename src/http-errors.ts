import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { isDatabaseUnavailable, loggable } from './db/errors'

/**
 * How an error becomes an answer, for the one error handler (plugins/app/http.ts) and the
 * compat adapters alike. Domain errors (src/errors.ts) carry their status and Retry-After;
 * nothing here needs to know where an error came from.
 */

/** The contract's error body: Fastify's shape, with a message that never leaks internals. */
export function errorBody (statusCode: number, message: string, code?: string) {
  return code === undefined
    ? { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message }
    : { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, code }
}

export const UNSUPPORTED_MEDIA_TYPE =
  'Unsupported Content-Type: send the body as JSON, with Content-Type: application/json'
export const INVALID_JSON = 'Body is not valid JSON'

/** Status and message for any error. */
export function classifyError (error: FastifyError): {
  statusCode: number
  message: string
  code?: string
  retryAfter?: number
} {
  // The message comes from src/validation.ts (the one formatter of schema errors).
  if (error.validation) return { statusCode: 400, message: error.message, code: 'FST_ERR_VALIDATION' }
  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError) {
    // V8's JSON.parse message quotes the body, which may hold a password.
    return { statusCode: 400, message: INVALID_JSON, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }
  }
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { statusCode: 415, message: UNSUPPORTED_MEDIA_TYPE, code: error.code }
  }
  if (isDatabaseUnavailable(error)) return { statusCode: 503, message: 'Database unavailable' }
  const statusCode = error.statusCode ?? 500
  const retryAfter = (error as { retryAfter?: unknown }).retryAfter
  const retry = typeof retryAfter === 'number' ? { retryAfter } : {}
  if (statusCode >= 400 && statusCode < 500) {
    const code = error.code?.startsWith('FST_') ? error.code : undefined
    return { statusCode, message: error.message, code, ...retry }
  }
  if (statusCode === 503) return { statusCode, message: error.message, ...retry }
  return { statusCode: 500, message: 'Internal Server Error' }
}

/**
 * What failed underneath a 503, in one short line: the innermost error of the cause chain
 * (its name, code and message), or the driver's error itself. A DrizzleQueryError's own message holds the statement's
 * parameters (password and token hashes), so only its cause, the driver's error, is quoted.
 */
function rootCause (error: FastifyError): string | undefined {
  let e: unknown = error
  let deepest: { name?: unknown, code?: unknown, message?: unknown } | undefined
  for (let depth = 0; e instanceof Error && depth < 4; depth++) {
    if (!(e instanceof DrizzleQueryError)) deepest = e as typeof deepest
    e = e.cause
  }
  // A 503 of our own without a cause (src/errors.ts) says it all in the answer's message.
  if (deepest === undefined || (deepest === error && error.statusCode === 503)) return undefined
  const text = [deepest.name, deepest.code, deepest.message]
    .filter((part): part is string => typeof part === 'string' && part !== '').join(' ')
  return text.replace(/\s+/g, ' ').slice(0, 200)
}

/**
 * Logs an error answer, for both error handlers. A 503 is a state the service chose to
 * answer with (the revocation store or the database is down, hashing is saturated): during
 * an outage every request meets it, so each gets one warning line naming the cause, with no
 * stack. Any other 5xx is a bug or a surprise: the whole error, stack included.
 */
export function logErrorAnswer (
  request: FastifyRequest, error: FastifyError, statusCode: number, message: string, code?: string
): void {
  if (statusCode === 503) {
    const cause = rootCause(error)
    request.log.warn({ statusCode, cause }, cause === undefined ? message : `${message}: ${cause}`)
  } else if (statusCode >= 500) {
    request.log.error(loggable(error), 'request failed')
  } else {
    request.log.info({ statusCode, code: code ?? error.code }, message)
  }
}

/**
 * The headers every answer carries, errors included. Every answer is user-specific or
 * carries tokens: never cache it (the docs, and the JWKS route, may be cached).
 */
export function setCommonHeaders (reply: FastifyReply, url: string): void {
  reply.header('x-content-type-options', 'nosniff')
  if (url.startsWith('/docs')) reply.header('x-frame-options', 'DENY')
  else reply.header('cache-control', 'no-store')
}
