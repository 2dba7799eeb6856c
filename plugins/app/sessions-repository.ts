import fp from 'fastify-plugin'
import { and, asc, eq, gt, isNotNull, isNull, lt, or, sql } from 'drizzle-orm'
import { refreshTokens, revokedTokens, sessions, users } from '../../src/db/schema'
import { appendToLog, revokeSessionsOfUser } from '../../src/db/revocation-log'
import type { RevocationEntry, Revoked } from '../../src/revocation/contract'

export interface SessionRecord {
  id: string
  userId: string
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  revokedAt: number | null
}

export type RotateResult =
  | { status: 'rotated', session: SessionRecord }
  /** the token was already used: the caller must revoke the session */
  | { status: 'reused', sessionId: string, userId: string }
  | { status: 'invalid' }

export interface NewSession {
  id: string
  userId: string
  /** the password version the login checked: the session is created only if it is still current */
  credentialVersion: number
  now: number
  expiresAt: number
  /** the `exp` (epoch ms) of the first access token */
  accessExpiresAt: number
}

/**
 * Data access for sessions and their refresh tokens (hashes only). Every revocation is
 * logged in the same transaction (src/db/revocation-log.ts) and answered as the entries
 * the blocklist must publish: a session revoked earlier is answered too, so that repeating
 * a revocation whose publish was lost still reaches every instance.
 */
export interface SessionsRepository {
  /** false (nothing written): the user is gone or changed its password since the check. */
  create (s: NewSession, refreshHash: string): Promise<boolean>
  /** One transaction: the old hash is marked used and the new one stored, or nothing happens. */
  rotate (oldHash: string, newHash: string, now: number, accessExpiresAt: number): Promise<RotateResult>
  /**
   * The 000 seed's renewal, in one transaction: consumes the presented token (its jti) and
   * extends the session's access expiry, only if the session is live and the token was not
   * consumed already. null: it was (at most one renewal per token succeeds).
   */
  renew (r: { jti: string, sessionId: string, tokenExpiresAt: number, accessExpiresAt: number, now: number }): Promise<RevocationEntry[] | null>
  findActive (id: string, now: number): Promise<SessionRecord | undefined>
  listActive (userId: string, now: number): Promise<SessionRecord[]>
  /** Revokes the session; no entries when there is no such session. */
  revoke (id: string, reason: string, now: number): Promise<Revoked>
  /** Revokes every session of the user except `exceptId`. */
  revokeAllOfUser (userId: string, reason: string, now: number, exceptId?: string): Promise<Revoked>
  /** Deletes sessions that can no longer matter: past their refresh and access expiry. */
  prune (now: number): Promise<number>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionsRepository: SessionsRepository
  }
}

export default fp(async function sessionsRepository (fastify) {
  const { db } = fastify
  const sessionColumns = {
    id: sessions.id,
    userId: sessions.userId,
    createdAt: sessions.createdAt,
    lastUsedAt: sessions.lastUsedAt,
    expiresAt: sessions.expiresAt,
    revokedAt: sessions.revokedAt
  }
  const tokenWithSession = db.select({
    usedAt: refreshTokens.usedAt,
    tokenExpiresAt: refreshTokens.expiresAt,
    session: sessionColumns
  }).from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .where(eq(refreshTokens.tokenHash, sql.placeholder('hash')))
    .prepare()
  // Refresh is a hot path: its statements are prepared once, and so is its transaction.
  const markUsed = db.update(refreshTokens).set({ usedAt: sql`${sql.placeholder('now')}` })
    .where(eq(refreshTokens.tokenHash, sql.placeholder('hash'))).prepare()
  const insertToken = db.insert(refreshTokens).values({
    tokenHash: sql.placeholder('hash'),
    sessionId: sql.placeholder('sessionId'),
    createdAt: sql.placeholder('now'),
    expiresAt: sql.placeholder('expiresAt')
  }).prepare()
  const touchSession = db.update(sessions).set({
    lastUsedAt: sql`${sql.placeholder('now')}`,
    accessExpiresAt: sql`max(${sessions.accessExpiresAt}, ${sql.placeholder('accessExpiresAt')})`
  }).where(eq(sessions.id, sql.placeholder('id'))).prepare()

  // better-sqlite3 transactions are synchronous: parallel refreshes of one token are
  // serialised here, and only the first finds it unused.
  const rotateTx = db.$client.transaction((oldHash: string, newHash: string, now: number, accessExpiresAt: number): RotateResult => {
    const row = tokenWithSession.get({ hash: oldHash })
    if (row === undefined) return { status: 'invalid' }
    const s = row.session
    if (row.usedAt !== null) return { status: 'reused', sessionId: s.id, userId: s.userId }
    if (s.revokedAt !== null || s.expiresAt <= now || row.tokenExpiresAt <= now) return { status: 'invalid' }
    markUsed.run({ now, hash: oldHash })
    insertToken.run({ hash: newHash, sessionId: s.id, now, expiresAt: s.expiresAt })
    touchSession.run({ now, id: s.id, accessExpiresAt })
    return { status: 'rotated', session: { ...s, lastUsedAt: now } }
  })

  const live = (id: string, now: number) => and(eq(sessions.id, id), isNull(sessions.revokedAt), gt(sessions.expiresAt, now))

  const repo: SessionsRepository = {
    async create (s, refreshHash) {
      return db.transaction((tx) => {
        // One statement: the session exists only if the password it checked is still current.
        const created = tx.run(sql`
          INSERT INTO ${sessions} (id, user_id, created_at, last_used_at, expires_at, access_expires_at)
          SELECT ${s.id}, ${s.userId}, ${s.now}, ${s.now}, ${s.expiresAt}, ${s.accessExpiresAt}
          WHERE EXISTS (SELECT 1 FROM ${users} WHERE id = ${s.userId} AND credential_version = ${s.credentialVersion})
        `).changes > 0
        if (created) tx.insert(refreshTokens).values({ tokenHash: refreshHash, sessionId: s.id, createdAt: s.now, expiresAt: s.expiresAt }).run()
        return created
      }, { behavior: 'immediate' })
    },

    async rotate (oldHash, newHash, now, accessExpiresAt) {
      return rotateTx.immediate(oldHash, newHash, now, accessExpiresAt)
    },

    async renew (r) {
      return db.transaction((tx) => {
        if (tx.select({ id: sessions.id }).from(sessions).where(live(r.sessionId, r.now)).get() === undefined) return null
        const consumed = tx.insert(revokedTokens)
          .values({ jti: r.jti, sessionId: r.sessionId, expiresAt: r.tokenExpiresAt, revokedAt: r.now })
          .onConflictDoNothing().run().changes > 0
        if (!consumed) return null // another request renewed this token first
        tx.update(sessions).set({ accessExpiresAt: sql`max(${sessions.accessExpiresAt}, ${r.accessExpiresAt})` })
          .where(eq(sessions.id, r.sessionId)).run()
        const entries: RevocationEntry[] = [{ kind: 'jti', id: r.jti, until: r.tokenExpiresAt }]
        appendToLog(tx, entries, r.now)
        return entries
      }, { behavior: 'immediate' })
    },

    async findActive (id, now) {
      return db.select(sessionColumns).from(sessions).where(live(id, now)).get()
    },

    async listActive (userId, now) {
      return db.select(sessionColumns).from(sessions)
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, now)))
        .orderBy(asc(sessions.createdAt))
        .all()
    },

    async revoke (id, reason, now) {
      return db.transaction((tx) => {
        const revoked = tx.update(sessions).set({ revokedAt: now, revokedReason: reason })
          .where(and(eq(sessions.id, id), isNull(sessions.revokedAt)))
          .returning({ until: sessions.accessExpiresAt }).all()
        const entries = revoked.map((r): RevocationEntry => ({ kind: 'sid', id, until: r.until }))
        appendToLog(tx, entries, now)
        if (entries.length > 0) return { entries, count: entries.length }
        // Already revoked: answered again, for publishing again.
        const earlier = tx.select({ until: sessions.accessExpiresAt }).from(sessions)
          .where(and(eq(sessions.id, id), isNotNull(sessions.revokedAt), gt(sessions.accessExpiresAt, now))).get()
        return { entries: earlier === undefined ? [] : [{ kind: 'sid', id, until: earlier.until }], count: 0 }
      }, { behavior: 'immediate' })
    },

    async revokeAllOfUser (userId, reason, now, exceptId) {
      return db.transaction((tx) => revokeSessionsOfUser(tx, userId, reason, now, exceptId), { behavior: 'immediate' })
    },

    async prune (now) {
      // refresh tokens go with their session (ON DELETE CASCADE); the revocation itself
      // lives on in the revocation log until its tokens expire
      return db.delete(sessions)
        .where(and(lt(sessions.accessExpiresAt, now), or(lt(sessions.expiresAt, now), isNotNull(sessions.revokedAt))))
        .run().changes
    }
  }
  fastify.decorate('sessionsRepository', repo)
}, { name: 'sessions-repository', dependencies: ['db'] })
