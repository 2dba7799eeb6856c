import { and, asc, eq, gt, isNotNull, isNull, lt, or, sql } from 'drizzle-orm'
import type { SessionsRepository } from '../repositories'
import type { PostgresDb } from './client'
import { appendToLog, consumeToken, revokeSessions, revokeSessionsOfUser } from './revocation-log'
import { refreshTokens, sessions, users } from './schema'

/**
 * Sessions on PostgreSQL, under READ COMMITTED. Each check that SQLite's single writer made
 * safe is a row lock here, held to the commit (see each method). Lock order, to stay free
 * of deadlocks: a user's row before that user's sessions; a refresh token before its
 * session; the revocation log's advisory lock last.
 */
export function postgresSessionsRepository (db: PostgresDb): SessionsRepository {
  const { orm } = db
  const sessionColumns = {
    id: sessions.id,
    userId: sessions.userId,
    createdAt: sessions.createdAt,
    lastUsedAt: sessions.lastUsedAt,
    expiresAt: sessions.expiresAt,
    revokedAt: sessions.revokedAt
  }
  const live = (id: string, now: number) =>
    and(eq(sessions.id, id), isNull(sessions.revokedAt), gt(sessions.expiresAt, now))

  return {
    async create (s, refreshHash) {
      return db.transaction(async (tx) => {
        // INSERT ... SELECT WHERE EXISTS is not enough here: a password change that commits
        // meanwhile revokes the user's sessions with a statement that cannot see this one
        // uncommitted. The row lock (FOR SHARE) makes a password change, a deletion or a
        // disable wait for this commit, and this wait for theirs (then it finds the version
        // changed, or the account disabled).
        const [user] = await tx.select({ id: users.id }).from(users)
          .where(and(eq(users.id, s.userId), eq(users.credentialVersion, s.credentialVersion),
            isNull(users.disabledAt)))
          .for('share')
        if (user === undefined) return false
        await tx.insert(sessions).values({
          id: s.id,
          userId: s.userId,
          createdAt: s.now,
          lastUsedAt: s.now,
          expiresAt: s.expiresAt,
          accessExpiresAt: s.accessExpiresAt
        })
        await tx.insert(refreshTokens)
          .values({ tokenHash: refreshHash, sessionId: s.id, createdAt: s.now, expiresAt: s.expiresAt })
        return true
      })
    },

    async rotate (oldHash, newHash, now, accessExpiresAt) {
      return db.transaction(async (tx) => {
        // FOR UPDATE OF the token: parallel rotations of one token (on any instance) queue
        // here; once the first commits, the next one re-reads the row, finds it used, and
        // reports the reuse.
        const [row] = await tx
          .select({ usedAt: refreshTokens.usedAt, tokenExpiresAt: refreshTokens.expiresAt, session: sessionColumns })
          .from(refreshTokens)
          .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
          .where(eq(refreshTokens.tokenHash, oldHash))
          .for('update', { of: refreshTokens })
        if (row === undefined) return { status: 'invalid' as const }
        const s = row.session
        if (row.usedAt !== null) return { status: 'reused' as const, sessionId: s.id, userId: s.userId }
        if (s.revokedAt !== null || s.expiresAt <= now || row.tokenExpiresAt <= now) {
          return { status: 'invalid' as const }
        }
        // The session as read above may have been revoked since: a revocation takes no lock on
        // the token. This UPDATE waits for a revocation holding the row and then re-checks
        // its condition on the committed row, so it either raises access_expires_at before any
        // revocation reads it (which then covers the new token) or finds the session revoked
        // and writes nothing: no token is ever issued after its session's revocation committed.
        const touched = await tx.update(sessions)
          .set({ lastUsedAt: now, accessExpiresAt: sql`greatest(${sessions.accessExpiresAt}, ${accessExpiresAt})` })
          .where(live(s.id, now))
          .returning({ id: sessions.id })
        if (touched.length === 0) return { status: 'invalid' as const }
        await tx.update(refreshTokens).set({ usedAt: now }).where(eq(refreshTokens.tokenHash, oldHash))
        await tx.insert(refreshTokens)
          .values({ tokenHash: newHash, sessionId: s.id, createdAt: now, expiresAt: s.expiresAt })
        return { status: 'rotated' as const, session: { ...s, lastUsedAt: now } }
      })
    },

    async renew (r) {
      return db.transaction(async (tx) => {
        const entry = await consumeToken(tx, r)
        if (entry === null) return null // a revoked session, or another request renewed this token first
        await appendToLog(tx, [entry], r.now)
        return [entry]
      })
    },

    async findActive (id, now) {
      return (await orm.select(sessionColumns).from(sessions).where(live(id, now)))[0]
    },

    async listActive (userId, now) {
      return await orm.select(sessionColumns).from(sessions)
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, now)))
        .orderBy(asc(sessions.createdAt))
    },

    async revoke (id, reason, now) {
      // Already revoked: answered again, for publishing again.
      return await db.transaction(async (tx) => await revokeSessions(tx, [eq(sessions.id, id)], reason, now))
    },

    async revokeAllOfUser (userId, reason, now, exceptId) {
      return db.transaction(async (tx) => {
        // The user's row first (as a password change does): logins wait, and two revocations
        // of one user's sessions never lock the same rows in different orders. A deleted
        // user has no row; its sessions were revoked with the deletion.
        await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('update')
        return await revokeSessionsOfUser(tx, userId, reason, now, exceptId)
      })
    },

    async prune (now) {
      // refresh tokens go with their session (ON DELETE CASCADE); the revocation itself
      // lives on in the revocation log until its tokens expire
      const deleted = await orm.delete(sessions)
        .where(and(lt(sessions.accessExpiresAt, now), or(lt(sessions.expiresAt, now), isNotNull(sessions.revokedAt))))
      return deleted.rowCount ?? 0
    }
  }
}
