import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

/** The contract's error body: Fastify's shape, with a message that never leaks internals. */
export function errorBody (statusCode: number, message: string, code?: string) {
  return code === undefined
    ? { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message }
    : { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, code }
}

// SQLite failing underneath us (disk, lock, corruption, a closed connection) is
// unavailability, not a bug to show: 503, like the revocation store.
const DB_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|CORRUPT|NOTADB|READONLY)/
export function isDatabaseUnavailable (error: unknown): boolean {
  for (let e = error as { code?: unknown, message?: unknown, cause?: unknown } | undefined, depth = 0; e != null && depth < 3; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && DB_UNAVAILABLE.test(e.code)) return true
    if (e.message === 'The database connection is not open') return true // better-sqlite3, after close()
  }
  return false
}

/** Status and message for any error, for the service API and for the compat adapters alike. */
export function classifyError (error: FastifyError): { statusCode: number, message: string, code?: string, retryAfter?: number } {
  if (error.validation) return { statusCode: 400, message: error.message, code: 'FST_ERR_VALIDATION' }
  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError) {
    // V8's JSON.parse message quotes the body, which may hold a password.
    return { statusCode: 400, message: 'Body is not valid JSON', code: 'FST_ERR_CTP_INVALID_JSON_BODY' }
  }
  if (isDatabaseUnavailable(error)) return { statusCode: 503, message: 'Database unavailable' }
  // Domain errors (src/errors.ts) carry their status, and Retry-After where it applies.
  const statusCode = error.statusCode ?? 500
  const retryAfter = (error as { retryAfter?: unknown }).retryAfter
  const retry = typeof retryAfter === 'number' ? { retryAfter } : {}
  if (statusCode >= 400 && statusCode < 500) {
    return { statusCode, message: error.message, code: error.code?.startsWith('FST_') ? error.code : undefined, ...retry }
  }
  if (statusCode === 503) return { statusCode, message: error.message, ...retry }
  return { statusCode: 500, message: 'Internal Server Error' }
}

/**
 * HTTP rules shared by every route: JSON parsing, security headers, the one error handler
 * and the 404 handler.
 */
export default fp(async function http (fastify) {
  // The default JSON parser (prototype-poisoning protection included), except that an empty
  // body counts as no body: POST /auth/logout may be sent with Content-Type and nothing else.
  // JSON only: text/plain and everything else is 415.
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) {
      done(null, undefined)
      return
    }
    parseJson(request, body as string, done)
  })

  // Set up front (a sync onRequest hook is cheaper than onSend) and kept on every answer,
  // errors included. Every answer is user-specific or carries tokens: never cache it.
  fastify.addHook('onRequest', function (request, reply, done) {
    reply.header('x-content-type-options', 'nosniff')
    if (request.url.startsWith('/docs')) reply.header('x-frame-options', 'DENY') // the docs may be cached
    else reply.header('cache-control', 'no-store')
    done()
  })

  fastify.setErrorHandler(function (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    const { statusCode, message, code, retryAfter } = classifyError(error)
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.info({ statusCode, code: code ?? error.code }, message)
    return reply.status(statusCode).send(errorBody(statusCode, message, code))
  })

  fastify.setNotFoundHandler(function (request, reply) {
    return reply.status(404).send(errorBody(404, `Route ${request.method} ${request.url.split('?')[0]} not found`))
  })
}, { name: 'http' })
