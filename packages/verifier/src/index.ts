import fp from 'fastify-plugin'
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Feed, type FeedStatus } from './feed'
import { createMetrics, type PromRegistry, type VerifierMetrics } from './metrics'

export type { FeedEntry } from './blocklist'
export type { FeedStatus as VerifierStatus } from './feed'
export type { PromRegistry } from './metrics'

/**
 * What to do with a request while the blocklist is stale: `'closed'` answers 503 with
 * `Retry-After`, `'open'` serves it (counted and logged), a function decides: it may send a
 * reply (the request stops there) or return without one (the request goes on, verified).
 */
export type OnStale = 'closed' | 'open' | ((request: FastifyRequest, reply: FastifyReply) => void | Promise<void>)

export interface VerifierOptions {
  /** `iss` every token must carry (the service's JWT_ISSUER) */
  issuer: string
  /** `aud` every token must carry (the service's JWT_AUDIENCE) */
  audience: string
  /** full URL of the service's `/.well-known/jwks.json` */
  jwksUrl: string
  /** full URL of `/revocations/stream`, or several (other instances), tried in turn */
  feedUrl: string | string[]
  /** the service's REVOCATION_FEED_TOKEN */
  feedToken: string
  /** ms without an event or heartbeat after which the blocklist is stale (default 3000) */
  staleAfter?: number
  /** default policy while stale (default 'closed'); a route may override it */
  onStale?: OnStale
  /** accepted signature algorithms (default EdDSA, ES256, RS256: those a JWKS can publish) */
  algorithms?: string[]
  /** ms to wait for the first snapshot before the start fails (default 8000, under Fastify's pluginTimeout) */
  startTimeout?: number
  /** seconds of clock skew allowed on exp/nbf (default 0) */
  clockTolerance?: number
  /** the host's prom-client Registry: the plugin's metrics are registered there */
  registry?: PromRegistry
  /**
   * how many verified tokens to remember (default 10,000; 0 = verify every time). A token
   * seen again skips the signature check; its exp and the blocklist are checked every time.
   */
  cacheSize?: number
}

/** The verified claims of an access token. */
export interface AccessClaims extends JWTPayload {
  sub: string
  sid: string
  jti: string
  iat: number
  exp: number
}

export interface RouteVerifierConfig {
  onStale?: OnStale
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: this route is not protected; otherwise per-route settings */
    verifier?: false | RouteVerifierConfig
  }
  interface FastifyRequest {
    /** the verified token's claims (null only on routes with `verifier: false`) */
    auth: AccessClaims
  }
  interface FastifyInstance {
    verifier: { status: () => FeedStatus }
  }
}

const TOKEN = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i
// A token may only name a key of the configured set (by kid), never bring or point to one.
const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5u', 'x5c'] as const

function unauthorized (reply: FastifyReply, message: string, invalid: boolean) {
  return reply
    .code(401)
    .header('WWW-Authenticate', invalid ? 'Bearer error="invalid_token"' : 'Bearer')
    .header('Cache-Control', 'no-store')
    .send({ statusCode: 401, error: 'Unauthorized', message })
}

function validate (options: VerifierOptions): { urls: string[], staleAfter: number, startTimeout: number } {
  for (const key of ['issuer', 'audience', 'jwksUrl', 'feedToken'] as const) {
    if (typeof options[key] !== 'string' || options[key] === '') {
      throw new Error(`@auth-service/fastify-verifier: option ${key} must be a non-empty string`)
    }
  }
  const urls = Array.isArray(options.feedUrl) ? options.feedUrl : [options.feedUrl]
  if (urls.length === 0) throw new Error('@auth-service/fastify-verifier: option feedUrl needs at least one URL')
  for (const u of [...urls, options.jwksUrl]) {
    if (!URL.canParse(u)) throw new Error(`@auth-service/fastify-verifier: ${JSON.stringify(u)} is not a URL`)
  }
  const staleAfter = options.staleAfter ?? 3000
  const startTimeout = options.startTimeout ?? 8000
  if (!Number.isFinite(staleAfter) || staleAfter <= 0) {
    throw new Error('@auth-service/fastify-verifier: option staleAfter must be a positive number of ms')
  }
  if (!Number.isFinite(startTimeout) || startTimeout <= 0) {
    throw new Error('@auth-service/fastify-verifier: option startTimeout must be a positive number of ms')
  }
  const onStale = options.onStale ?? 'closed'
  if (onStale !== 'closed' && onStale !== 'open' && typeof onStale !== 'function') {
    throw new Error("@auth-service/fastify-verifier: option onStale must be 'closed', 'open' or a function")
  }
  return { urls, staleAfter, startTimeout }
}

async function verifierPlugin (app: FastifyInstance, options: VerifierOptions): Promise<void> {
  const { urls, staleAfter, startTimeout } = validate(options)
  const defaultOnStale: OnStale = options.onStale ?? 'closed'
  const retryAfter = String(Math.max(1, Math.ceil(staleAfter / 1000)))
  // jose's remote key set caches the JWKS, refetches on an unknown kid (with a cooldown) and
  // so picks up a key rotation by itself.
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl))
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    algorithms: options.algorithms ?? ['EdDSA', 'ES256', 'RS256'],
    typ: 'at+jwt',
    requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
    clockTolerance: options.clockTolerance ?? 0
  }
  const cacheSize = options.cacheSize ?? 10_000
  const tolerance = (options.clockTolerance ?? 0) * 1000
  // token -> its verified claims, oldest first (a Map keeps insertion order).
  const verified = new Map<string, AccessClaims>()
  const remember = (token: string, claims: AccessClaims) => {
    if (cacheSize <= 0) return
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!)
    verified.set(token, claims)
  }
  const log = app.log.child({ plugin: 'fastify-verifier' })
  const feed = new Feed({ urls, token: options.feedToken, staleAfter, log })
  const metrics: VerifierMetrics | null = options.registry ? createMetrics(options.registry, feed) : null
  let lastOpenWarning = 0

  app.addHook('onClose', async () => feed.close())

  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), startTimeout) })
  const first = await Promise.race([feed.ready.then(() => 'ready' as const), timedOut])
  clearTimeout(timer)
  if (first === 'timeout') {
    feed.close()
    throw new Error(
      `@auth-service/fastify-verifier: no revocation snapshot from ${urls.join(', ')} within ${startTimeout} ms ` +
      `(last error: ${feed.lastError || 'none'}); check feedUrl, feedToken and that the service has REVOCATION_FEED_TOKEN set`
    )
  }
  log.info({ position: feed.position, entries: feed.blocklist.size }, 'revocation snapshot loaded')

  app.decorate('verifier', { status: () => feed.status() })
  app.decorateRequest('auth', null as unknown as AccessClaims)

  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config?.verifier
    if (config === false) return

    const match = TOKEN.exec(request.headers.authorization ?? '')
    if (match === null) {
      metrics?.outcome.unauthorized.inc()
      return unauthorized(reply, 'Missing or malformed bearer token', false)
    }
    const token = match[1]
    let claims = verified.get(token)
    if (claims !== undefined) {
      const now = Date.now()
      if (claims.exp * 1000 <= now - tolerance) {
        verified.delete(token)
        metrics?.outcome.unauthorized.inc()
        return unauthorized(reply, 'Token expired', true)
      }
    } else {
      try {
        const { payload, protectedHeader } = await jwtVerify(token, jwks, verifyOptions)
        if (typeof protectedHeader.kid !== 'string' || FORBIDDEN_HEADERS.some((h) => h in protectedHeader) ||
          typeof payload.sub !== 'string' || typeof payload.sid !== 'string' || typeof payload.jti !== 'string') {
          metrics?.outcome.unauthorized.inc()
          return unauthorized(reply, 'Invalid token', true)
        }
        claims = Object.freeze(payload) as AccessClaims
      } catch (err) {
        if (!(err instanceof joseErrors.JOSEError)) throw err
        // A JWKS that cannot be fetched is our fault, not the caller's: 503, not 401.
        if (err instanceof joseErrors.JWKSTimeout ||
          (err.code === 'ERR_JOSE_GENERIC' && /fetch|JSON Web Key Set/i.test(err.message))) {
          request.log.warn({ err: err.message }, 'JWKS unavailable')
          return reply.code(503).header('Retry-After', '1')
            .send({ statusCode: 503, error: 'Service Unavailable', message: 'Token keys unavailable' })
        }
        metrics?.outcome.unauthorized.inc()
        return unauthorized(reply, err instanceof joseErrors.JWTExpired ? 'Token expired' : 'Invalid token', true)
      }
      // Only a token that is valid now is remembered, so an nbf in the future never is.
      remember(token, claims)
    }

    if (feed.blocklist.revoked(claims.jti, claims.sid)) {
      metrics?.outcome.revoked.inc()
      return unauthorized(reply, 'Token revoked', true)
    }

    if (!feed.fresh()) {
      const policy = config?.onStale ?? defaultOnStale
      if (policy === 'closed') {
        metrics?.outcome.staleRefused.inc()
        return reply.code(503).header('Retry-After', retryAfter)
          .send({ statusCode: 503, error: 'Service Unavailable', message: 'Revocation list is stale; try again shortly' })
      }
      if (policy === 'open') {
        metrics?.outcome.staleAccepted.inc()
        const now = Date.now()
        if (now - lastOpenWarning > 10_000) {
          lastOpenWarning = now
          request.log.warn({ lastEventAgeMs: feed.status(now).lastEventAgeMs },
            'revocation list is stale; serving an open route without it')
        }
      } else {
        request.auth = claims
        await policy(request, reply)
        if (reply.sent) return reply
        metrics?.outcome.staleAccepted.inc()
        return
      }
    } else {
      metrics?.outcome.accepted.inc()
    }
    request.auth = claims
  })
}

const verifier = fp(verifierPlugin, { fastify: '5.x', name: '@auth-service/fastify-verifier' })
export default verifier
export { verifier }
