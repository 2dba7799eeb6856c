import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { AccessClaims } from '../../src/schemas/tokens'
import type { UserProfile } from '../../src/db/repositories'
import { errorBody } from '../../src/http-errors'
import { bearerToken } from '../../src/bearer'
import { InvalidTokenError, UserGoneError } from '../../src/errors'

type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/** How the authenticate hook says no. */
export interface AuthenticateOptions {
  /**
   * 'direct' (the default): a 401 in the service API's error shape, sent by the hook itself
   * (saying no is a hot path). 'error-handler': an InvalidTokenError passed to the route's
   * error handler, for routes with an error shape of their own (the compat routes).
   * Either way the answer carries `WWW-Authenticate: Bearer`.
   */
  answer?: 'direct' | 'error-handler'
}

/** A token given some other way (a body), checked as the authenticate hook checks a bearer token. */
export interface ResolvedToken {
  claims: AccessClaims
  profile: UserProfile
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The onRequest hook of every protected route: a valid access token in
     * `Authorization: Bearer` (sets request.auth), whose jti and sid are not revoked (one
     * store round trip; 503 when the store cannot say), of a user that still exists (sets
     * request.profile); otherwise 401, answered as `opts.answer` says. On onRequest, so that
     * a revoked token is refused before its body is even read, as a forged one is.
     */
    authenticate (opts?: AuthenticateOptions): Hook
    /** The same checks on a token given some other way (a body): throws InvalidTokenError or a 503. */
    resolveAccessToken (token: string | undefined): Promise<ResolvedToken>
  }
  interface FastifyRequest {
    /** the verified access token's claims, set by `authenticate` */
    auth: AccessClaims | null
    /** the token's user, set by `authenticate` */
    profile: UserProfile | null
  }
}

export const MISSING_TOKEN = 'Missing bearer token'
export const NOT_BEARER = 'Authorization header must be "Bearer <access token>"'
export const INVALID_TOKEN = 'Invalid or expired token'
export const REVOKED_TOKEN = 'Token has been revoked'
export const USER_GONE = new UserGoneError().message

/** Where the check leaves what it found: the request, or a holder for a token from a body. */
interface Found { auth: AccessClaims | null, profile: UserProfile | null }
type Done = (err?: Error) => void
/** Says no with one of the messages above; `reply` is null for a token from a body. */
type Refuse = (reply: FastifyReply | null, done: Done, message: string) => void

export default fp(async function authenticate (fastify) {
  const { tokens, revocationStore: store, usersRepository: users, metrics } = fastify
  // Refusals by reason: malformed, bad_signature and expired are counted by the verifier.
  const missing = metrics.tokensRejected.labels('missing')
  const revoked = metrics.tokensRejected.labels('revoked')

  fastify.decorateRequest('auth', null)
  fastify.decorateRequest('profile', null)

  /**
   * The one token check, callback-style: on the hot path it costs no promise when the answer
   * is at hand (for verification always with HS256, and for tokens already verified with the
   * others; for the blocklist with the memory store). Calls `done()` with `found` filled in,
   * `done(err)` when something failed (a 503 from the store), or `refuse` once.
   */
  const makeCheck = (refuse: Refuse) => {
    function check (
      found: Found, reply: FastifyReply | null, done: Done, token: string | undefined, missingAs: string
    ) {
      const claims = token === undefined ? null : tokens.verifyAccessToken(token)
      if (claims === null) {
        if (token === undefined) {
          missing.inc()
          return refuse(reply, done, missingAs)
        }
        return refuse(reply, done, INVALID_TOKEN)
      }
      if (claims instanceof Promise) {
        // An asymmetric JWT_ALG's first sight of a token (jose verifies asynchronously).
        claims.then((verified) => {
          if (verified === null) return refuse(reply, done, INVALID_TOKEN)
          notRevoked(found, reply, done, verified)
        }, done)
        return
      }
      notRevoked(found, reply, done, claims)
    }
    function notRevoked (found: Found, reply: FastifyReply | null, done: Done, claims: AccessClaims) {
      found.auth = claims
      let answer
      try {
        answer = store.isRevoked(claims.jti, claims.sid)
      } catch (err) {
        return done(err as Error) // the store cannot say: fail closed (503)
      }
      if (answer === false) return userExists(found, reply, done, claims)
      if (answer === true) {
        revoked.inc()
        return refuse(reply, done, REVOKED_TOKEN)
      }
      answer.then((isRevoked) => {
        if (!isRevoked) return userExists(found, reply, done, claims)
        revoked.inc()
        refuse(reply, done, REVOKED_TOKEN)
      }, done)
    }
    // The one place that asks whether the token's user still exists (the profile is cached
    // per process for a second, and the routes that show it use request.profile).
    function userExists (found: Found, reply: FastifyReply | null, done: Done, claims: AccessClaims) {
      users.findProfile(claims.sub).then((profile) => {
        if (profile === undefined) return refuse(reply, done, USER_GONE)
        found.profile = profile
        done()
      }, done)
    }
    return check
  }

  // The service API's 401 bodies, built once (serialised by the route's 401 schema).
  const messages = [MISSING_TOKEN, NOT_BEARER, INVALID_TOKEN, REVOKED_TOKEN, USER_GONE]
  const bodies = new Map(messages.map((m) => [m, Object.freeze(errorBody(401, m))]))

  const hookOf = (refuse: Refuse): Hook => {
    const check = makeCheck(refuse)
    return function authenticateHook (request, reply, done) {
      const token = bearerToken(request)
      // A header without the scheme ("<token>", "Token <token>") says so: not "missing".
      const missingAs = request.headers.authorization === undefined ? MISSING_TOKEN : NOT_BEARER
      check(request, reply, done, token, missingAs)
    }
  }
  const hooks = {
    direct: hookOf((reply, _done, message) => {
      (reply as FastifyReply).header('www-authenticate', 'Bearer').code(401).send(bodies.get(message))
    }),
    'error-handler': hookOf((reply, done, message) => {
      (reply as FastifyReply).header('www-authenticate', 'Bearer')
      done(new InvalidTokenError(message))
    })
  }
  fastify.decorate('authenticate', (opts?: AuthenticateOptions) => hooks[opts?.answer ?? 'direct'])

  // A token from a body: the same check, answered with the errors the callers catch.
  const checkBodyToken = makeCheck((_reply, done, message) => {
    done(message === USER_GONE
      ? new UserGoneError()
      : message === REVOKED_TOKEN ? new InvalidTokenError(REVOKED_TOKEN) : new InvalidTokenError())
  })
  fastify.decorate('resolveAccessToken', function (token: string | undefined): Promise<ResolvedToken> {
    return new Promise((resolve, reject) => {
      const found: Found = { auth: null, profile: null }
      checkBodyToken(found, null, (err) => {
        if (err === undefined) resolve({ claims: found.auth!, profile: found.profile! })
        else reject(err)
      }, token, INVALID_TOKEN)
    })
  })
}, { name: 'authenticate', dependencies: ['tokens', 'revocation-store', 'repositories', 'http', 'metrics'] })
