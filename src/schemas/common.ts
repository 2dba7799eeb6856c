import { STATUS_CODES } from 'node:http'
import { Type, type Static, type TSchema } from '@sinclair/typebox'

/** The one error shape of the service API (Fastify's, as @fastify/sensible produces it). */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599, description: 'the HTTP status, repeated', examples: [401] }),
  error: Type.String({ description: 'HTTP reason phrase', examples: ['Unauthorized'] }),
  message: Type.String({
    description: 'what is wrong; never echoes a password or a token',
    examples: ['Invalid or expired token']
  }),
  code: Type.Optional(Type.String({
    description: 'a machine-readable code, when there is one',
    examples: ['FST_ERR_VALIDATION']
  }))
}, { $id: 'ErrorResponse', title: 'ErrorResponse' })
export type ErrorResponse = Static<typeof ErrorResponse>

/**
 * A string that takes one of a few values, as one `enum` (TypeBox's union of literals is an
 * anyOf of one-value enums in OpenAPI, which generators turn into a type per value).
 */
export function StringEnum<const T extends readonly string[]> (values: T, options: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options })
}

const errorRef = Type.Ref(ErrorResponse)

export const RETRY_AFTER = {
  'Retry-After': { type: 'integer', description: 'seconds to wait before trying again' }
} as const

/** A documented error response: what it means, and a body a client really gets. */
export interface ErrorResponseDoc<S extends TSchema = typeof errorRef> {
  description: string
  headers?: typeof RETRY_AFTER
  content: { 'application/json': { schema: S, example: Record<string, unknown> } }
}

export function errorResponse (
  statusCode: number, description: string, message: string, code?: string
): ErrorResponseDoc {
  const example = code === undefined
    ? { statusCode, error: STATUS_CODES[statusCode], message }
    : { statusCode, error: STATUS_CODES[statusCode], message, code }
  return {
    description,
    ...(statusCode === 429 || statusCode === 503 ? { headers: RETRY_AFTER } : {}),
    content: { 'application/json': { schema: errorRef, example } }
  }
}

/** What each status means on any route, and an example of its body; a route may say more with errorResponse. */
const ERROR_DOCS: Record<number, [description: string, message: string, code?: string]> = {
  400: [
    'The body or a parameter breaks a rule of the schema; the message names the field and what is allowed',
    'username must be 3 to 64 characters of A-Z a-z 0-9 . _ -',
    'FST_ERR_VALIDATION'
  ],
  401: [
    'The access token is missing, malformed, forged, expired or revoked, or its user no longer exists',
    'Invalid or expired token'
  ],
  403: ['Forbidden', 'Forbidden'],
  404: ['Not found', 'Not found'],
  409: ['The username is taken (usernames are unique regardless of case)', 'Username is already taken'],
  413: ['The body is over 16 KiB', 'Request body is too large', 'FST_ERR_CTP_BODY_TOO_LARGE'],
  414: [
    'A path segment is over 200 characters (answered before the token is read)',
    'A path segment is too long (at most 200 characters)',
    'FST_ERR_MAX_PARAM_LENGTH'
  ],
  415: [
    'The body is not JSON',
    'Unsupported Content-Type: send the body as JSON, with Content-Type: application/json',
    'FST_ERR_CTP_INVALID_MEDIA_TYPE'
  ],
  429: [
    'Too many attempts from this client or for this account; Retry-After says when to try again',
    'Too many attempts; try again later'
  ],
  503: [
    'A dependency is unavailable (database, revocation store, or password hashing is overloaded, then with ' +
      'Retry-After); nothing was changed',
    'Revocation store unavailable'
  ]
}

/** Error responses a route can give, for its `response` schema: `errors(400, 401)`. */
export function errors (...codes: number[]): Record<number, ErrorResponseDoc> {
  const out: Record<number, ErrorResponseDoc> = {}
  for (const code of codes) {
    const reason = STATUS_CODES[code] ?? 'Error'
    const [description, message, fastifyCode] = ERROR_DOCS[code] ?? [reason, reason]
    out[code] = errorResponse(code, description, message, fastifyCode)
  }
  return out
}

/** Errors every JSON-body route can give besides its own: malformed body, too large, wrong type. */
export const BODY_ERRORS = [400, 413, 415] as const

export const NoContent = (description: string) => Type.Null({ description })

export const IsoTime = Type.String({
  format: 'date-time',
  description: 'ISO 8601, UTC',
  examples: ['2026-11-24T09:30:00.000Z']
})

export const USER_ID = '0b7e5a52-3c1f-4a8e-9d27-6f1f2c9e8b41'

export const Uuid = (description?: string) => Type.String({
  format: 'uuid',
  examples: [USER_ID],
  ...(description === undefined ? {} : { description })
})

export const BearerSecurity = [{ bearerAuth: [] as string[] }]
