import type { FastifyRequest } from 'fastify'

/**
 * The token from `Authorization: Bearer <token>` (scheme case-insensitive, one space);
 * never from the query string or a cookie. What follows is not checked here: the verifier
 * refuses anything that is not exactly a token we signed.
 */
export function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined || header.length <= 7) return undefined
  const scheme = header.slice(0, 7)
  if (scheme !== 'Bearer ' && scheme.toLowerCase() !== 'bearer ') return undefined
  return header.slice(7)
}
