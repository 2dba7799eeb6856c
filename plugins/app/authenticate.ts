import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AccessClaims } from './tokens'

export class InvalidTokenError extends Error {
  readonly statusCode = 401
  constructor (message = 'Invalid or expired token') {
    super(message)
    this.name = 'InvalidTokenError'
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: a valid access token in `Authorization: Bearer`, or 401. Sets request.auth. */
    authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void>
    /** preHandler hook: the token's jti and sid are not revoked (one store round trip), or 401/503. */
    checkRevocation (request: FastifyRequest, reply: FastifyReply): Promise<void>
    /** Both checks on a token given some other way (a body): throws InvalidTokenError or a 503. */
    resolveAccessToken (token: string | undefined): Promise<AccessClaims>
  }
  interface FastifyRequest {
    /** the verified access token's claims, set by `authenticate` */
    auth: AccessClaims | null
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i // RFC 6750 b64token, one space

/** The token from `Authorization: Bearer <token>`; never from the query string or a cookie. */
export function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined) return undefined
  return BEARER.exec(header)?.[1]
}

export default fp(async function authenticate (fastify) {
  const { tokens, revocationStore: store } = fastify

  fastify.decorateRequest('auth', null)

  fastify.decorate('authenticate', async function (request: FastifyRequest, reply: FastifyReply) {
    const token = bearerToken(request)
    const claims = token === undefined ? null : tokens.verifyAccessToken(token)
    if (claims === null) {
      reply.header('www-authenticate', 'Bearer')
      throw new InvalidTokenError(request.headers.authorization === undefined ? 'Missing bearer token' : undefined)
    }
    request.auth = claims
  })

  fastify.decorate('checkRevocation', async function (request: FastifyRequest, reply: FastifyReply) {
    const claims = request.auth as AccessClaims
    if (await store.isRevoked(claims.jti, claims.sid)) {
      reply.header('www-authenticate', 'Bearer')
      throw new InvalidTokenError('Token has been revoked')
    }
  })

  fastify.decorate('resolveAccessToken', async function (token: string | undefined) {
    const claims = token === undefined ? null : tokens.verifyAccessToken(token)
    if (claims === null) throw new InvalidTokenError()
    if (await store.isRevoked(claims.jti, claims.sid)) throw new InvalidTokenError('Token has been revoked')
    return claims
  })
}, { name: 'authenticate', dependencies: ['tokens', 'revocation-store'] })
