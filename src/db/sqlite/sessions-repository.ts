import { and, asc, eq, gt, isNotNull, isNull, lt, or, sql } from 'drizzle-orm'
import type { RotateResult, SessionsRepository } from '../repositories'
import type { SqliteDb } from './client'
import { appendToLog, consumeToken, revokeSessions, revokeSessionsOfUser } from './revocation-log'
import { refreshTokens, sessions, users } from './schema'

/** Sessions on SQLite: every write transaction is BEGIN IMMEDIATE (one writer at a time). */
export function sqliteSessionsRepository ({ orm: db, client }: SqliteDb): SessionsRepository {
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
  }).where(and(
    eq(sessions.id, sql.placeholder('id')), isNull(sessions.revokedAt), gt(sessions.expiresAt, sql.placeholder('now'))
  )).prepare()

  // better-sqlite3 transactions are synchronous: parallel refreshes of one token are
  // serialised here, and only the first finds it unused.
  type Rotate = (oldHash: string, newHash: string, now: number, accessExpiresAt: number) => RotateResult
  const rotateTx = client.transaction<Rotate>((oldHash, newHash, now, accessExpiresAt) => {
    const row = tokenWithSession.get({ hash: oldHash })
    if (row === undefined) return { status: 'invalid' }
    const s = row.session
    if (row.usedAt !== null) return { status: 'reused', sessionId: s.id, userId: s.userId }
    if (s.revokedAt !== null || s.expiresAt <= now || row.tokenExpiresAt <= now) return { status: 'invalid' }
    // Conditional like the PostgreSQL twin's (one writer makes the check above enough here, but
    // the rule is the same): a session revoked meanwhile gets no new token, and nothing is written.
    if (touchSession.run({ now, id: s.id, accessExpiresAt }).changes === 0) return { status: 'invalid' }
    markUsed.run({ now, hash: oldHash })
    insertToken.run({ hash: newHash, sessionId: s.id, now, expiresAt: s.expiresAt })
    return { status: 'rotated', session: { ...s, lastUsedAt: now } }
  })

  const live = (id: string, now: number) =>
    and(eq(sessions.id, id), isNull(sessions.revokedAt), gt(sessions.expiresAt, now))

  return {
    async create (s, refreshHash) {
      return db.transaction((tx) => {
        // One statement: the session exists only if the password it checked is still current
        // and the account is not disabled
        // (enough here: no other writer can run between the check and the insert).
        const created = tx.run(sql`
          INSERT INTO ${sessions} (id, user_id, created_at, last_used_at, expires_at, access_expires_at)
          SELECT ${s.id}, ${s.userId}, ${s.now}, ${s.now}, ${s.expiresAt}, ${s.accessExpiresAt}
          WHERE EXISTS (SELECT 1 FROM ${users}
            WHERE id = ${s.userId} AND credential_version = ${s.credentialVersion} AND disabled_at IS NULL)
        `).changes > 0
        if (created) {
          tx.insert(refreshTokens)
            .values({ tokenHash: refreshHash, sessionId: s.id, createdAt: s.now, expiresAt: s.expiresAt }).run()
        }
        return created
      }, { behavior: 'immediate' })
    },

    async rotate (oldHash, newHash, now, accessExpiresAt) {
      return rotateTx.immediate(oldHash, newHash, now, accessExpiresAt)
    },

    async renew (r) {
      return db.transaction((tx) => {
        const entry = consumeToken(tx, r)
        if (entry === null) return null // a revoked session, or another request renewed this token first
        appendToLog(tx, [entry], r.now)
        return [entry]
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
      // Already revoked: answered again, for publishing again.
      return db.transaction((tx) => revokeSessions(tx, [eq(sessions.id, id)], reason, now), { behavior: 'immediate' })
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
}
