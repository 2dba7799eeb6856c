import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { AccessClaims } from './tokens'

export class InvalidTokenError extends Error {
  readonly statusCode = 401
  constructor (message = 'Invalid or expired token') {
    // Rejecting is a hot path (garbage and forged tokens): a stack trace would be most of
    // its cost, and a 401 needs none.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message)
    Error.stackTraceLimit = limit
    this.name = 'InvalidTokenError'
  }
}

type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: a valid access token in `Authorization: Bearer`, or 401. Sets request.auth. */
    authenticate: Hook
    /** preHandler hook: the token's jti and sid are not revoked (one store round trip), or 401/503. */
    checkRevocation: Hook
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

  // Callback-style hooks: on the hot path they cost no promise when the answer is at hand
  // (always for verification, and for the blocklist with the memory store).
  const authenticateHook: Hook = function (request, reply, done) {
    const token = bearerToken(request)
    const claims = token === undefined ? null : tokens.verifyAccessToken(token)
    if (claims === null) {
      reply.header('www-authenticate', 'Bearer')
      done(new InvalidTokenError(request.headers.authorization === undefined ? 'Missing bearer token' : undefined))
      return
    }
    request.auth = claims
    done()
  }

  const revoked = (reply: FastifyReply) => {
    reply.header('www-authenticate', 'Bearer')
    return new InvalidTokenError('Token has been revoked')
  }

  const checkRevocationHook: Hook = function (request, reply, done) {
    const claims = request.auth as AccessClaims
    const answer = store.isRevoked(claims.jti, claims.sid)
    if (typeof answer === 'boolean') {
      done(answer ? revoked(reply) : undefined)
      return
    }
    answer.then((isRevoked) => done(isRevoked ? revoked(reply) : undefined), done)
  }

  fastify.decorate('authenticate', authenticateHook)
  fastify.decorate('checkRevocation', checkRevocationHook)

  fastify.decorate('resolveAccessToken', async function (token: string | undefined) {
    const claims = token === undefined ? null : tokens.verifyAccessToken(token)
    if (claims === null) throw new InvalidTokenError()
    if (await store.isRevoked(claims.jti, claims.sid)) throw new InvalidTokenError('Token has been revoked')
    return claims
  })
}, { name: 'authenticate', dependencies: ['tokens', 'revocation-store'] })
