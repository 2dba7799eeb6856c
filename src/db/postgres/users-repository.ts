import { randomUUID } from 'node:crypto'
import { and, eq, gt, isNull, sql } from 'drizzle-orm'
import { InvalidTokenError, UsernameTakenError } from '../../errors'
import { usernameKey, type Renewal, type UsersRepository } from '../repositories'
import { newUserRecord } from '../dialect-rules'
import { isUniqueViolation, type PgOrm, type PostgresDb } from './client'
import { appendToLog, consumeToken, revokeSessionsOfUser } from './revocation-log'
import { sessions, users } from './schema'

/**
 * Users on PostgreSQL, under READ COMMITTED. Where SQLite relies on running one writer at
 * a time, this relies on the user's row lock: a password change (UPDATE) and a deletion
 * (DELETE) hold it until they commit, and a login takes it FOR SHARE before it inserts its
 * session (sessions-repository.ts), so the three never interleave. Uniqueness of names is
 * the unique index's job: a racing registration gets 23505, answered as UsernameTakenError.
 * findProfile is uncached here (plugins/app/repositories.ts puts the cache in front).
 */
export function postgresUsersRepository (db: PostgresDb): UsersRepository {
  const { orm } = db
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
  // Named prepared statements: parsed once per connection.
  const byId = orm.select(columns).from(users).where(eq(users.id, sql.placeholder('id'))).prepare('users_by_id')
  const byKey = orm.select(columns).from(users).where(eq(users.usernameKey, sql.placeholder('key')))
    .prepare('users_by_key')
  const profileColumns = {
    id: users.id, username: users.username, createdAt: users.createdAt, updatedAt: users.updatedAt
  }
  const profileById = orm.select(profileColumns)
    .from(users).where(eq(users.id, sql.placeholder('id'))).prepare('users_profile_by_id')

  const taken = (err: unknown) => isUniqueViolation(err) ? new UsernameTakenError() : err
  // A renewal consumed with the change it came with; throwing rolls the change back.
  const consume = async (tx: PgOrm, renewal: Renewal) => {
    const entry = await consumeToken(tx, renewal)
    if (entry === null) throw new InvalidTokenError()
    return entry
  }

  return {
    async create (username, passwordHash) {
      const now = Date.now()
      const row = {
        id: randomUUID(), username, usernameKey: usernameKey(username), passwordHash, createdAt: now, updatedAt: now
      }
      await orm.insert(users).values(row).catch((err) => { throw taken(err) })
      return newUserRecord(row.id, username, passwordHash, now)
    },
    async findById (id) {
      return (await byId.execute({ id }))[0]
    },
    async findProfile (id) {
      return (await profileById.execute({ id }))[0]
    },
    async findByUsername (username) {
      return (await byKey.execute({ key: usernameKey(username) }))[0]
    },
    async rename (id, username, renewal) {
      return db.transaction(async (tx) => {
        // The user's row, then the session's (the order every writer of both keeps).
        const [renamed] = await tx.update(users)
          .set({ username, usernameKey: usernameKey(username), updatedAt: Date.now() })
          .where(eq(users.id, id)).returning(columns)
        if (renamed === undefined || renewal === undefined) return renamed
        await appendToLog(tx, [await consume(tx, renewal)], renewal.now)
        return renamed
      }).catch((err) => { throw taken(err) })
    },
    async changePassword (c) {
      return db.transaction(async (tx) => {
        // The user's row first (every writer of a user's sessions locks it first: no deadlock),
        // exclusively: logins of this user wait until this commits, then see the new version.
        const [current] = await tx.select({ version: users.credentialVersion }).from(users)
          .where(eq(users.id, c.id)).for('update')
        const [asking] = await tx.select({ id: sessions.id }).from(sessions)
          .where(and(eq(sessions.id, c.sessionId), isNull(sessions.revokedAt), gt(sessions.expiresAt, c.now)))
        if (asking === undefined) return 'session_revoked' as const
        if (current === undefined) return 'gone' as const
        if (current.version !== c.expectedVersion) return 'stale' as const
        const renewed = c.renewal === undefined ? undefined : await consume(tx, c.renewal)
        const set: Partial<typeof users.$inferInsert> = {
          passwordHash: c.passwordHash,
          credentialVersion: c.expectedVersion + 1,
          updatedAt: c.now
        }
        if (c.username !== undefined) {
          set.username = c.username
          set.usernameKey = usernameKey(c.username)
        }
        const [user] = await tx.update(users).set(set).where(eq(users.id, c.id)).returning(columns)
        const revoked = await revokeSessionsOfUser(tx, c.id, 'password_change', c.now, c.sessionId)
        if (renewed !== undefined) await appendToLog(tx, [renewed], c.now) // the log last (its lock)
        return { user, revoked }
      }).catch((err) => { throw taken(err) })
    },
    async delete (id, now) {
      return db.transaction(async (tx) => {
        // DELETE holds the row lock until commit: a login waiting FOR SHARE then finds no row.
        const deleted = await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id })
        if (deleted.length === 0) return undefined
        return await revokeSessionsOfUser(tx, id, 'account_deleted', now)
      })
    }
  }
}
