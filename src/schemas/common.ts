import { Type, type Static } from '@sinclair/typebox'

/** The one error shape of the service API (Fastify's, as @fastify/sensible produces it). */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  error: Type.String({ description: 'HTTP reason phrase' }),
  message: Type.String({ description: 'what is wrong; never echoes a password or a token' }),
  code: Type.Optional(Type.String())
}, { $id: 'ErrorResponse', title: 'ErrorResponse' })
export type ErrorResponse = Static<typeof ErrorResponse>

const errorRef = Type.Ref(ErrorResponse)

/** Error responses a route can give, for its `response` schema: `errors(400, 401)`. */
export function errors (...codes: number[]): Record<number, typeof errorRef> {
  const out: Record<number, typeof errorRef> = {}
  for (const code of codes) out[code] = errorRef
  return out
}

/** Errors every JSON-body route can give besides its own: malformed body, too large, wrong type. */
export const BODY_ERRORS = [400, 413, 415] as const

export const NoContent = Type.Null({ description: 'No Content' })

export const IsoTime = Type.String({ format: 'date-time', description: 'ISO 8601, UTC' })

export const BearerSecurity = [{ bearerAuth: [] as string[] }]
