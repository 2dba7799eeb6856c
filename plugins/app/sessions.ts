import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { TokenPair } from '../../src/schemas/tokens'
import type { RequestContext } from '../../src/request-context'
import { InvalidTokenError, RateLimitedError } from '../../src/errors'
import type { AccessClaims, SignedAccessToken } from './tokens'
import type { Renewal, SessionRecord } from '../../src/db/repositories'

/**
 * Compat renewals (seed 000: GET/PUT /user, POST /validate_token) per session in any
 * RENEWAL_WINDOW_MS; beyond, 429 with Retry-After (docs/api.md). Counted from the database,
 * so the cap holds across instances: a session adds at most this many blocklist entries per
 * window, each living until its token's expiry.
 */
export const RENEWALS_PER_SESSION = 10
export const RENEWAL_WINDOW_MS = 60_000

export type RevokeReason =
  'logout' | 'logout_all' | 'refresh_reuse' | 'user_revoked' | 'account_disabled' | 'admin_logout'

/** A new session's token pair, and its id (for the security event; not part of the answer). */
export type StartedSession = TokenPair & { sessionId: string }

/**
 * Sessions and the tokens that belong to them. Every revocation is committed to the
 * database (the source of truth) first, then published through the revocation store, and
 * only then answered: a revoking request that could not reach every instance fails with
 * 503, and repeating it publishes again.
 */
export interface Sessions {
  /**
   * A new session (one login): a fresh sid, access token and refresh token. null: the
   * password checked (`credentialVersion`) was changed meanwhile, or the user deleted.
   */
  start (userId: string, credentialVersion: number): Promise<StartedSession | null>
  /**
   * Rotates the refresh token. null: not a live refresh token (401), also when a revocation
   * of its session committed while this ran (the new token is then never signed). A reused
   * one revokes its session (security event 'refresh.reuse', with `ctx`'s client).
   */
  refresh (refreshToken: string, ctx: RequestContext): Promise<TokenPair | null>
  /**
   * A new access token in the same session, the presented one consumed (the 000 seed's
   * renewal): of many requests renewing one token, one succeeds; the others, and any
   * renewal of a token whose session was revoked, throw InvalidTokenError.
   */
  renewAccessToken (claims: AccessClaims): Promise<SignedAccessToken>
  /**
   * The same renewal, made inside another write (compat PUT /user): `renewal` goes to that
   * write's transaction, which consumes the token or writes nothing (InvalidTokenError), so
   * that only the request that consumed the token changes anything; once it committed,
   * `complete` signs the new token and publishes the consumed one's revocation. Throws 503
   * first when the revocation store is down, and 429 over the renewal cap (checkRenewalLimit).
   */
  prepareRenewal (claims: AccessClaims): Promise<{ renewal: Renewal, complete: () => Promise<SignedAccessToken> }>
  /**
   * Throws RateLimitedError (429) when the session has renewed RENEWALS_PER_SESSION times in
   * the last RENEWAL_WINDOW_MS; renewAccessToken and prepareRenewal check it. A route that changes
   * something before renewing calls it first, so that a refusal changes nothing.
   */
  checkRenewalLimit (claims: AccessClaims): Promise<void>
  /** false: no such session */
  revoke (sessionId: string, reason: RevokeReason): Promise<boolean>
  /** answers how many sessions were revoked by this call */
  revokeAllOfUser (userId: string, reason: RevokeReason, exceptSessionId?: string): Promise<number>
  listActive (userId: string): Promise<SessionRecord[]>
  findActive (sessionId: string): Promise<SessionRecord | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: Sessions
  }
}

export default fp(async function sessions (fastify) {
  const { sessionsRepository: repo, revocationsRepository, revocationStore: store, tokens, metrics } = fastify
  const { accessTokenTtl, refreshTokenTtl } = fastify.config

  // Every renewal adds a blocklist entry (log row, Redis key, one per replica) that lives as
  // long as the token: a per-session cap keeps what one session can add bounded.
  const checkRenewalLimit = async (claims: AccessClaims) => {
    const now = Date.now()
    const recent = await revocationsRepository.revokedSince(claims.sid, now - RENEWAL_WINDOW_MS)
    if (recent.count < RENEWALS_PER_SESSION) return
    const freed = (recent.earliest ?? now) + RENEWAL_WINDOW_MS
    throw new RateLimitedError(Math.max(1, Math.ceil((freed - now) / 1000)))
  }

  // Access tokens are signed after the database knows their expiry (a session's revocation
  // must outlive every token it issued), so issue time and expiry are fixed first.
  const issueTime = (now: number) => {
    const iat = Math.floor(now / 1000)
    return { iat, expMs: (iat + accessTokenTtl) * 1000 }
  }
  const pair = (
    userId: string, sessionId: string, iat: number, refreshToken: string, expiresAt: number, now: number
  ): TokenPair => ({
    access_token: tokens.signAccessToken(userId, sessionId, iat).token,
    token_type: 'Bearer',
    expires_in: accessTokenTtl,
    refresh_token: refreshToken,
    refresh_expires_in: Math.max(0, Math.floor((expiresAt - now) / 1000))
  })

  const prepareRenewal = async (claims: AccessClaims) => {
    await store.ping() // 503 before anything is written, when the store is down
    await checkRenewalLimit(claims)
    const now = Date.now()
    const { iat, expMs } = issueTime(now)
    const tokenExpiresAt = claims.exp * 1000
    const renewal: Renewal = { jti: claims.jti, sessionId: claims.sid, tokenExpiresAt, accessExpiresAt: expMs, now }
    const complete = async () => {
      const fresh = tokens.signAccessToken(claims.sub, claims.sid, iat)
      metrics.revocations.inc({ cause: 'renewal' })
      await store.revoke([{ kind: 'jti', id: claims.jti, until: tokenExpiresAt }])
      return fresh
    }
    return { renewal, complete }
  }

  const service: Sessions = {
    async start (userId, credentialVersion) {
      const now = Date.now()
      const id = randomUUID()
      const expiresAt = now + refreshTokenTtl * 1000
      const { iat, expMs } = issueTime(now)
      const refresh = tokens.newRefreshToken()
      const session = { id, userId, credentialVersion, now, expiresAt, accessExpiresAt: expMs }
      const created = await repo.create(session, refresh.hash)
      return created ? { ...pair(userId, id, iat, refresh.token, expiresAt, now), sessionId: id } : null
    },

    async refresh (refreshToken, ctx) {
      // Fail closed before rotating: a 503 must not cost the client its refresh token.
      await store.ping()
      const now = Date.now()
      const { iat, expMs } = issueTime(now)
      const next = tokens.newRefreshToken()
      const result = await repo.rotate(tokens.hashRefreshToken(refreshToken), next.hash, now, expMs)
      metrics.refreshes.inc({ outcome: result.status === 'reused' ? 'reuse_detected' : result.status })
      if (result.status === 'invalid') return null
      if (result.status === 'reused') {
        // RFC 9700 §4.14: a rotated token presented again means one of two parties stole it.
        const revoked = await repo.revoke(result.sessionId, 'refresh_reuse', now)
        metrics.revocations.inc({ cause: 'refresh_reuse' }, revoked.count)
        // Recorded once committed, before the publish: a publish that fails (503) does not undo it.
        const { userId, sessionId } = result
        await fastify.audit.record({ event: 'refresh.reuse', userId, sessionId, sessionsRevoked: revoked.count }, ctx)
        await store.revoke(revoked.entries)
        return null
      }
      return pair(result.session.userId, result.session.id, iat, next.token, result.session.expiresAt, now)
    },

    checkRenewalLimit,

    async renewAccessToken (claims) {
      const { renewal, complete } = await prepareRenewal(claims)
      if (await repo.renew(renewal) === null) throw new InvalidTokenError('Invalid or expired token')
      return await complete()
    },

    prepareRenewal: async (claims) => await prepareRenewal(claims),

    async revoke (sessionId, reason) {
      await store.ping()
      const revoked = await repo.revoke(sessionId, reason, Date.now())
      metrics.revocations.inc({ cause: reason }, revoked.count)
      await store.revoke(revoked.entries)
      return revoked.entries.length > 0
    },

    async revokeAllOfUser (userId, reason, exceptSessionId) {
      await store.ping()
      const revoked = await repo.revokeAllOfUser(userId, reason, Date.now(), exceptSessionId)
      metrics.revocations.inc({ cause: reason }, revoked.count)
      await store.revoke(revoked.entries)
      return revoked.count
    },

    listActive: async (userId) => await repo.listActive(userId, Date.now()),
    findActive: async (sessionId) => await repo.findActive(sessionId, Date.now())
  }

  fastify.decorate('sessions', service)
}, {
  name: 'sessions',
  dependencies: [
    'config', 'tokens', 'repositories', 'revocation-store', 'metrics', 'audit'
  ]
})
