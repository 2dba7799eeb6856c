import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { AccessClaims } from './tokens'
import { errorBody } from './http'
import { InvalidTokenError } from '../../src/errors'

type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * onRequest hook: a valid access token in `Authorization: Bearer`, or 401 in the
     * service API's error shape (sent directly: saying no is a hot path). Sets request.auth.
     */
    authenticate: Hook
    /** preHandler hook: the token's jti and sid are not revoked (one store round trip), or 401/503. */
    checkRevocation: Hook
    /**
     * The same two hooks for routes with an error shape of their own (the compat routes):
     * they pass an InvalidTokenError to the route's error handler instead of answering.
     */
    authenticateToErrorHandler: Hook
    checkRevocationToErrorHandler: Hook
    /** Both checks on a token given some other way (a body): throws InvalidTokenError or a 503. */
    resolveAccessToken (token: string | undefined): Promise<AccessClaims>
  }
  interface FastifyRequest {
    /** the verified access token's claims, set by `authenticate` */
    auth: AccessClaims | null
  }
}

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

export default fp(async function authenticate (fastify) {
  const { tokens, revocationStore: store, metrics } = fastify
  // Refusals by reason: malformed, bad_signature and expired are counted by the verifier.
  const missing = metrics.tokensRejected.labels('missing')
  const revoked = metrics.tokensRejected.labels('revoked')

  fastify.decorateRequest('auth', null)

  // Callback-style hooks: on the hot path they cost no promise when the answer is at hand
  // (for verification always with HS256, and for tokens already verified with the others;
  // for the blocklist with the memory store).
  const MISSING = 'Missing bearer token'
  const INVALID = 'Invalid or expired token'
  const REVOKED = 'Token has been revoked'
  // The service API's 401 bodies, built once (serialised by the route's 401 schema).
  const bodies = new Map([MISSING, INVALID, REVOKED].map((m) => [m, Object.freeze(errorBody(401, m))]))

  const makeHooks = (direct: boolean) => {
    const reject = (reply: FastifyReply, done: HookHandlerDoneFunction, message: string) => {
      reply.header('www-authenticate', 'Bearer')
      if (direct) reply.code(401).send(bodies.get(message))
      else done(new InvalidTokenError(message))
    }
    const authenticateHook: Hook = function (request, reply, done) {
      const token = bearerToken(request)
      const claims = token === undefined ? null : tokens.verifyAccessToken(token)
      if (claims === null) {
        if (token === undefined) missing.inc()
        return reject(reply, done, request.headers.authorization === undefined ? MISSING : INVALID)
      }
      if (claims instanceof Promise) {
        // An asymmetric JWT_ALG's first sight of a token (jose verifies asynchronously).
        claims.then((verified) => {
          if (verified === null) return reject(reply, done, INVALID)
          request.auth = verified
          done()
        }, done)
        return
      }
      request.auth = claims
      done()
    }
    const checkRevocationHook: Hook = function (request, reply, done) {
      const claims = request.auth as AccessClaims
      const answer = store.isRevoked(claims.jti, claims.sid)
      if (answer === false) return done()
      if (answer === true) {
        revoked.inc()
        return reject(reply, done, REVOKED)
      }
      answer.then((isRevoked) => {
        if (!isRevoked) return done()
        revoked.inc()
        reject(reply, done, REVOKED)
      }, done)
    }
    return { authenticateHook, checkRevocationHook }
  }

  const direct = makeHooks(true)
  const viaErrorHandler = makeHooks(false)
  fastify.decorate('authenticate', direct.authenticateHook)
  fastify.decorate('checkRevocation', direct.checkRevocationHook)
  fastify.decorate('authenticateToErrorHandler', viaErrorHandler.authenticateHook)
  fastify.decorate('checkRevocationToErrorHandler', viaErrorHandler.checkRevocationHook)

  fastify.decorate('resolveAccessToken', async function (token: string | undefined) {
    if (token === undefined) missing.inc()
    const claims = token === undefined ? null : await tokens.verifyAccessToken(token)
    if (claims === null) throw new InvalidTokenError()
    if (await store.isRevoked(claims.jti, claims.sid)) {
      revoked.inc()
      throw new InvalidTokenError('Token has been revoked')
    }
    return claims
  })
}, { name: 'authenticate', dependencies: ['tokens', 'revocation-store', 'http', 'metrics'] })
