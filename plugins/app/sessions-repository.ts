import fp from 'fastify-plugin'
import { and, asc, eq, gt, isNotNull, isNull, lt, ne, or, sql } from 'drizzle-orm'
import { refreshTokens, sessions } from '../../src/db/schema'

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

/** Data access for sessions and their refresh tokens (hashes only). */
export interface SessionsRepository {
  create (s: { id: string, userId: string, now: number, expiresAt: number }, refreshHash: string): Promise<void>
  /** One transaction: the old hash is marked used and the new one stored, or nothing happens. */
  rotate (oldHash: string, newHash: string, now: number): Promise<RotateResult>
  findActive (id: string, now: number): Promise<SessionRecord | undefined>
  listActive (userId: string, now: number): Promise<SessionRecord[]>
  /** Marks the session revoked; false when it was not active. */
  revoke (id: string, reason: string, now: number): Promise<boolean>
  /** Revokes every active session of the user except `exceptId`; returns the ids revoked. */
  revokeAllOfUser (userId: string, reason: string, now: number, exceptId?: string): Promise<string[]>
  /** Sessions revoked after `since`: what the blocklist must still hold. */
  revokedSince (since: number): Promise<Array<{ id: string, revokedAt: number }>>
  /** Deletes sessions that can no longer matter: expired, or revoked before `revokedBefore`. */
  prune (now: number, revokedBefore: number): Promise<number>
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
  const touchSession = db.update(sessions).set({ lastUsedAt: sql`${sql.placeholder('now')}` })
    .where(eq(sessions.id, sql.placeholder('id'))).prepare()

  // better-sqlite3 transactions are synchronous: parallel refreshes of one token are
  // serialised here, and only the first finds it unused.
  const rotateTx = db.$client.transaction((oldHash: string, newHash: string, now: number): RotateResult => {
    const row = tokenWithSession.get({ hash: oldHash })
    if (row === undefined) return { status: 'invalid' }
    const s = row.session
    if (row.usedAt !== null) return { status: 'reused', sessionId: s.id, userId: s.userId }
    if (s.revokedAt !== null || s.expiresAt <= now || row.tokenExpiresAt <= now) return { status: 'invalid' }
    markUsed.run({ now, hash: oldHash })
    insertToken.run({ hash: newHash, sessionId: s.id, now, expiresAt: s.expiresAt })
    touchSession.run({ now, id: s.id })
    return { status: 'rotated', session: { ...s, lastUsedAt: now } }
  })

  const repo: SessionsRepository = {
    async create (s, refreshHash) {
      db.transaction((tx) => {
        tx.insert(sessions).values({ id: s.id, userId: s.userId, createdAt: s.now, lastUsedAt: s.now, expiresAt: s.expiresAt }).run()
        tx.insert(refreshTokens).values({ tokenHash: refreshHash, sessionId: s.id, createdAt: s.now, expiresAt: s.expiresAt }).run()
      })
    },

    async rotate (oldHash, newHash, now) {
      return rotateTx.immediate(oldHash, newHash, now)
    },

    async findActive (id, now) {
      return db.select(sessionColumns).from(sessions)
        .where(and(eq(sessions.id, id), isNull(sessions.revokedAt), gt(sessions.expiresAt, now)))
        .get()
    },

    async listActive (userId, now) {
      return db.select(sessionColumns).from(sessions)
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, now)))
        .orderBy(asc(sessions.createdAt))
        .all()
    },

    async revoke (id, reason, now) {
      return db.update(sessions).set({ revokedAt: now, revokedReason: reason })
        .where(and(eq(sessions.id, id), isNull(sessions.revokedAt)))
        .run().changes > 0
    },

    async revokeAllOfUser (userId, reason, now, exceptId) {
      const conditions = [eq(sessions.userId, userId), isNull(sessions.revokedAt)]
      if (exceptId !== undefined) conditions.push(ne(sessions.id, exceptId))
      return db.update(sessions).set({ revokedAt: now, revokedReason: reason })
        .where(and(...conditions))
        .returning({ id: sessions.id })
        .all()
        .map((r) => r.id)
    },

    async revokedSince (since) {
      return db.select({ id: sessions.id, revokedAt: sql<number>`${sessions.revokedAt}` }).from(sessions)
        .where(and(isNotNull(sessions.revokedAt), gt(sessions.revokedAt, since)))
        .all()
    },

    async prune (now, revokedBefore) {
      // refresh tokens go with their session (ON DELETE CASCADE)
      return db.delete(sessions)
        .where(or(lt(sessions.expiresAt, revokedBefore), and(isNotNull(sessions.revokedAt), lt(sessions.revokedAt, revokedBefore))))
        .run().changes
    }
  }
  fastify.decorate('sessionsRepository', repo)
}, { name: 'sessions-repository', dependencies: ['db'] })
