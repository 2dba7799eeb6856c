import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { TokenPair } from '../../src/schemas/tokens'
import type { AccessClaims, SignedAccessToken } from './tokens'
import type { SessionRecord } from './sessions-repository'
import type { RevocationEntry } from './revocation-store'

export type RevokeReason = 'logout' | 'logout_all' | 'password_change' | 'account_deleted' | 'refresh_reuse' | 'user_revoked'

/**
 * Sessions and the tokens that belong to them. Every revocation is written to the database
 * (the source of truth) before the blocklist, and before the caller answers.
 */
export interface Sessions {
  /** A new session (one login): a fresh sid, access token and refresh token. */
  start (userId: string): Promise<TokenPair>
  /** Rotates the refresh token. null: not a live refresh token (401). A reused one revokes its session. */
  refresh (refreshToken: string, log: FastifyBaseLogger): Promise<TokenPair | null>
  /** A new access token in the same session, the presented one revoked (the 000 seed's renewal). */
  renewAccessToken (claims: AccessClaims): Promise<SignedAccessToken>
  revokeAccessToken (claims: AccessClaims): Promise<void>
  revoke (sessionId: string, reason: RevokeReason): Promise<boolean>
  revokeAllOfUser (userId: string, reason: RevokeReason, exceptSessionId?: string): Promise<string[]>
  listActive (userId: string): Promise<SessionRecord[]>
  findActive (sessionId: string): Promise<SessionRecord | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: Sessions
  }
}

export default fp(async function sessions (fastify) {
  const { sessionsRepository: repo, revocationsRepository, revocationStore: store, tokens } = fastify
  const { accessTokenTtl, refreshTokenTtl } = fastify.config
  const accessTtlMs = accessTokenTtl * 1000

  const pair = (userId: string, sessionId: string, refreshToken: string, expiresAt: number, now: number): TokenPair => ({
    access_token: tokens.signAccessToken(userId, sessionId).token,
    token_type: 'Bearer',
    expires_in: accessTokenTtl,
    refresh_token: refreshToken,
    refresh_expires_in: Math.max(0, Math.floor((expiresAt - now) / 1000))
  })

  // A revoked session's access tokens all expire within one access-token lifetime.
  const sidEntries = (ids: string[], now: number): RevocationEntry[] =>
    ids.map((id) => ({ kind: 'sid', id, until: now + accessTtlMs }))

  const service: Sessions = {
    async start (userId) {
      const now = Date.now()
      const id = randomUUID()
      const expiresAt = now + refreshTokenTtl * 1000
      const refresh = tokens.newRefreshToken()
      await repo.create({ id, userId, now, expiresAt }, refresh.hash)
      return pair(userId, id, refresh.token, expiresAt, now)
    },

    async refresh (refreshToken, log) {
      // Fail closed before rotating: a 503 must not cost the client its refresh token.
      await store.ping()
      const now = Date.now()
      const next = tokens.newRefreshToken()
      const result = await repo.rotate(tokens.hashRefreshToken(refreshToken), next.hash, now)
      if (result.status === 'invalid') return null
      if (result.status === 'reused') {
        // RFC 9700 §4.14: a rotated token presented again means one of two parties stole it.
        const revoked = await repo.revoke(result.sessionId, 'refresh_reuse', now)
        if (revoked) await store.revoke(sidEntries([result.sessionId], now))
        log.warn({ event: 'refresh.reuse', userId: result.userId, sessionId: result.sessionId }, 'refresh token reuse: session revoked')
        return null
      }
      return pair(result.session.userId, result.session.id, next.token, result.session.expiresAt, now)
    },

    async renewAccessToken (claims) {
      const fresh = tokens.signAccessToken(claims.sub, claims.sid)
      await service.revokeAccessToken(claims)
      return fresh
    },

    async revokeAccessToken (claims) {
      await store.ping() // 503 before anything is written, when the store is down
      const now = Date.now()
      const until = claims.exp * 1000
      await revocationsRepository.add({ jti: claims.jti, sessionId: claims.sid, expiresAt: until, now })
      await store.revoke([{ kind: 'jti', id: claims.jti, until }])
    },

    async revoke (sessionId, reason) {
      await store.ping()
      const now = Date.now()
      const revoked = await repo.revoke(sessionId, reason, now)
      if (revoked) await store.revoke(sidEntries([sessionId], now))
      return revoked
    },

    async revokeAllOfUser (userId, reason, exceptSessionId) {
      await store.ping()
      const now = Date.now()
      const ids = await repo.revokeAllOfUser(userId, reason, now, exceptSessionId)
      if (ids.length > 0) await store.revoke(sidEntries(ids, now))
      return ids
    },

    listActive: async (userId) => await repo.listActive(userId, Date.now()),
    findActive: async (sessionId) => await repo.findActive(sessionId, Date.now())
  }

  fastify.decorate('sessions', service)
}, { name: 'sessions', dependencies: ['config', 'tokens', 'sessions-repository', 'revocations-repository', 'revocation-store'] })
