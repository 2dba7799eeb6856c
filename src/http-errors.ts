import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply } from 'fastify'
import { isDatabaseUnavailable } from './db/errors'

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
 * The headers every answer carries, errors included. Every answer is user-specific or
 * carries tokens: never cache it (the docs, and the JWKS route, may be cached).
 */
export function setCommonHeaders (reply: FastifyReply, url: string): void {
  reply.header('x-content-type-options', 'nosniff')
  if (url.startsWith('/docs')) reply.header('x-frame-options', 'DENY')
  else reply.header('cache-control', 'no-store')
}
