import { randomUUID } from 'node:crypto'
import { and, eq, gt, isNull, sql } from 'drizzle-orm'
import { InvalidTokenError, UsernameTakenError } from '../../errors'
import { usernameKey, type Renewal, type UsersRepository } from '../repositories'
import { newUserRecord } from '../dialect-rules'
import { isUniqueViolation, type SqliteDb } from './client'
import { appendToLog, consumeToken, revokeSessionsOfUser, type Writer } from './revocation-log'
import { sessions, users } from './schema'

/**
 * SQLite has one writer at a time: every write transaction here is BEGIN IMMEDIATE, so
 * each runs alone, and a check inside one holds until its commit. findProfile is uncached
 * here (plugins/app/repositories.ts puts the cache in front).
 */
/**
 * Consumes a renewal with the change it came with, and logs it; throwing rolls the change
 * back (the caller's transaction), so only the request that consumed the token changes anything.
 */
function consume (tx: Writer, renewal: Renewal): void {
  const entry = consumeToken(tx, renewal)
  if (entry === null) throw new InvalidTokenError()
  appendToLog(tx, [entry], renewal.now)
}

export function sqliteUsersRepository ({ orm: db }: SqliteDb): UsersRepository {
  const columns = {
    id: users.id,
    username: users.username,
    passwordHash: users.passwordHash,
    credentialVersion: users.credentialVersion,
    createdAt: users.createdAt,
    updatedAt: users.updatedAt,
    disabled: sql<boolean>`${users.disabledAt} IS NOT NULL`.mapWith(Boolean),
    mfaEnabled: users.mfaEnabled
  }
  // Prepared once: the hot path (GET /users/me) is one of these.
  const byId = db.select(columns).from(users).where(eq(users.id, sql.placeholder('id'))).prepare()
  const byKey = db.select(columns).from(users).where(eq(users.usernameKey, sql.placeholder('key'))).prepare()
  const profileColumns = {
    id: users.id, username: users.username, createdAt: users.createdAt, updatedAt: users.updatedAt
  }
  const profileById = db.select(profileColumns)
    .from(users).where(eq(users.id, sql.placeholder('id'))).prepare()

  return {
    async create (username, passwordHash) {
      const now = Date.now()
      const row = {
        id: randomUUID(), username, usernameKey: usernameKey(username), passwordHash, createdAt: now, updatedAt: now
      }
      try {
        db.insert(users).values(row).run()
      } catch (err) {
        if (isUniqueViolation(err)) throw new UsernameTakenError()
        throw err
      }
      return newUserRecord(row.id, username, passwordHash, now)
    },
    async findById (id) {
      return byId.get({ id })
    },
    async findProfile (id) {
      return profileById.get({ id })
    },
    async findByUsername (username) {
      return byKey.get({ key: usernameKey(username) })
    },
    async rename (id, username, renewal) {
      try {
        return db.transaction((tx) => {
          const renamed = tx.update(users).set({ username, usernameKey: usernameKey(username), updatedAt: Date.now() })
            .where(eq(users.id, id)).run().changes > 0
          if (renamed && renewal !== undefined) consume(tx, renewal)
          return byId.get({ id })
        }, { behavior: 'immediate' })
      } catch (err) {
        if (isUniqueViolation(err)) throw new UsernameTakenError()
        throw err
      }
    },
    async changePassword (c) {
      try {
        return db.transaction((tx) => {
          const asking = tx.select({ id: sessions.id }).from(sessions)
            .where(and(eq(sessions.id, c.sessionId), isNull(sessions.revokedAt), gt(sessions.expiresAt, c.now))).get()
          if (asking === undefined) return 'session_revoked' as const
          const set: Partial<typeof users.$inferInsert> = {
            passwordHash: c.passwordHash,
            credentialVersion: sql`${users.credentialVersion} + 1` as unknown as number,
            updatedAt: c.now
          }
          if (c.username !== undefined) {
            set.username = c.username
            set.usernameKey = usernameKey(c.username)
          }
          const changed = tx.update(users).set(set)
            .where(and(eq(users.id, c.id), eq(users.credentialVersion, c.expectedVersion))).run().changes > 0
          if (!changed) {
            const exists = tx.select({ id: users.id }).from(users).where(eq(users.id, c.id)).get() !== undefined
            return exists ? 'stale' as const : 'gone' as const
          }
          if (c.renewal !== undefined) consume(tx, c.renewal)
          const revoked = revokeSessionsOfUser(tx, c.id, 'password_change', c.now, c.sessionId)
          return { user: byId.get({ id: c.id })!, revoked }
        }, { behavior: 'immediate' })
      } catch (err) {
        if (isUniqueViolation(err)) throw new UsernameTakenError()
        throw err
      }
    },
    async delete (id, now) {
      return db.transaction((tx) => {
        if (tx.delete(users).where(eq(users.id, id)).run().changes === 0) return undefined
        return revokeSessionsOfUser(tx, id, 'account_deleted', now)
      }, { behavior: 'immediate' })
    }
  }
}
