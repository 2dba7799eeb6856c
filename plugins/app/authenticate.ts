import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { AccessClaims } from '../../src/schemas/tokens'
import type { UserProfile } from '../../src/db/repositories'
import { errorBody } from '../../src/http-errors'
import { bearerToken } from '../../src/bearer'
import { InvalidTokenError, UserGoneError } from '../../src/errors'

type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/** A token given some other way (a body), checked as the three hooks check a bearer token. */
export interface ResolvedToken {
  claims: AccessClaims
  profile: UserProfile
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * onRequest hook: a valid access token in `Authorization: Bearer`, or 401 in the
     * service API's error shape (sent directly: saying no is a hot path). Sets request.auth.
     */
    authenticate: Hook
    /**
     * onRequest hook, after `authenticate`: the token's jti and sid are not revoked (one store
     * round trip), or 401/503. On onRequest, so that a revoked token is refused before its
     * body is even read, as a forged one is.
     */
    checkRevocation: Hook
    /** onRequest hook, after `checkRevocation`: the token's user still exists, or 401. Sets request.profile. */
    requireUser: Hook
    /**
     * The same three hooks for routes with an error shape of their own (the compat routes):
     * they pass an InvalidTokenError to the route's error handler instead of answering.
     */
    authenticateToErrorHandler: Hook
    checkRevocationToErrorHandler: Hook
    requireUserToErrorHandler: Hook
    /** The three checks on a token given some other way (a body): throws InvalidTokenError or a 503. */
    resolveAccessToken (token: string | undefined): Promise<ResolvedToken>
  }
  interface FastifyRequest {
    /** the verified access token's claims, set by `authenticate` */
    auth: AccessClaims | null
    /** the token's user, set by `requireUser` */
    profile: UserProfile | null
  }
}

export const MISSING_TOKEN = 'Missing bearer token'
export const NOT_BEARER = 'Authorization header must be "Bearer <access token>"'
export const INVALID_TOKEN = 'Invalid or expired token'
export const REVOKED_TOKEN = 'Token has been revoked'
export const USER_GONE = new UserGoneError().message

export default fp(async function authenticate (fastify) {
  const { tokens, revocationStore: store, usersRepository: users, metrics } = fastify
  // Refusals by reason: malformed, bad_signature and expired are counted by the verifier.
  const missing = metrics.tokensRejected.labels('missing')
  const revoked = metrics.tokensRejected.labels('revoked')

  fastify.decorateRequest('auth', null)
  fastify.decorateRequest('profile', null)

  // Callback-style hooks: on the hot path they cost no promise when the answer is at hand
  // (for verification always with HS256, and for tokens already verified with the others;
  // for the blocklist with the memory store).
  // The service API's 401 bodies, built once (serialised by the route's 401 schema).
  const messages = [MISSING_TOKEN, NOT_BEARER, INVALID_TOKEN, REVOKED_TOKEN, USER_GONE]
  const bodies = new Map(messages.map((m) => [m, Object.freeze(errorBody(401, m))]))

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
        if (token === undefined) {
          missing.inc()
          // A header without the scheme ("<token>", "Token <token>") says so: not "invalid".
          return reject(reply, done, request.headers.authorization === undefined ? MISSING_TOKEN : NOT_BEARER)
        }
        return reject(reply, done, INVALID_TOKEN)
      }
      if (claims instanceof Promise) {
        // An asymmetric JWT_ALG's first sight of a token (jose verifies asynchronously).
        claims.then((verified) => {
          if (verified === null) return reject(reply, done, INVALID_TOKEN)
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
        return reject(reply, done, REVOKED_TOKEN)
      }
      answer.then((isRevoked) => {
        if (!isRevoked) return done()
        revoked.inc()
        reject(reply, done, REVOKED_TOKEN)
      }, done)
    }
    // The one place that asks whether the token's user still exists (the profile is cached
    // per process for a second, and the routes that show it use request.profile).
    const requireUserHook: Hook = function (request, reply, done) {
      users.findProfile((request.auth as AccessClaims).sub).then((profile) => {
        if (profile === undefined) return reject(reply, done, USER_GONE)
        request.profile = profile
        done()
      }, done)
    }
    return { authenticateHook, checkRevocationHook, requireUserHook }
  }

  const direct = makeHooks(true)
  const viaErrorHandler = makeHooks(false)
  fastify.decorate('authenticate', direct.authenticateHook)
  fastify.decorate('checkRevocation', direct.checkRevocationHook)
  fastify.decorate('requireUser', direct.requireUserHook)
  fastify.decorate('authenticateToErrorHandler', viaErrorHandler.authenticateHook)
  fastify.decorate('checkRevocationToErrorHandler', viaErrorHandler.checkRevocationHook)
  fastify.decorate('requireUserToErrorHandler', viaErrorHandler.requireUserHook)

  fastify.decorate('resolveAccessToken', async function (token: string | undefined): Promise<ResolvedToken> {
    if (token === undefined) missing.inc()
    const claims = token === undefined ? null : await tokens.verifyAccessToken(token)
    if (claims === null) throw new InvalidTokenError()
    if (await store.isRevoked(claims.jti, claims.sid)) {
      revoked.inc()
      throw new InvalidTokenError(REVOKED_TOKEN)
    }
    const profile = await users.findProfile(claims.sub)
    if (profile === undefined) throw new UserGoneError()
    return { claims, profile }
  })
}, { name: 'authenticate', dependencies: ['tokens', 'revocation-store', 'repositories', 'http', 'metrics'] })
