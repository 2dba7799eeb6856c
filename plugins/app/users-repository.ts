import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { and, eq, gt, isNull, sql } from 'drizzle-orm'
import { sessions, users } from '../../src/db/schema'
import { revokeSessionsOfUser } from '../../src/db/revocation-log'
import type { Revoked } from '../../src/revocation/contract'
import { UsernameTakenError } from '../../src/errors'

export interface UserRecord {
  id: string
  username: string
  passwordHash: string
  /** bumped by every password change (see users.credentialVersion in schema.ts) */
  credentialVersion: number
  createdAt: number
  updatedAt: number
}

/** What the API shows of a user: no password hash. */
export type UserProfile = Omit<UserRecord, 'passwordHash' | 'credentialVersion'>

/** Why a password change was not made: nothing was written. */
export type PasswordChangeRefused = 'gone' | 'stale' | 'session_revoked'

/** Data access for accounts. Async so that a second SQL dialect can slot in without touching callers. */
export interface UsersRepository {
  create (username: string, passwordHash: string): Promise<UserRecord>
  findById (id: string): Promise<UserRecord | undefined>
  /**
   * The profile, from a per-process cache (PROFILE_CACHE_MS) in front of the database:
   * the hot path (GET /users/me) then costs no query. Changes made by this process are
   * seen at once; changes made by another instance within PROFILE_CACHE_MS. Never used
   * for a decision that needs the password hash.
   */
  findProfile (id: string): Promise<UserProfile | undefined>
  findByUsername (username: string): Promise<UserRecord | undefined>
  /** A new username. Throws UsernameTakenError; returns undefined when the user is gone. */
  rename (id: string, username: string): Promise<UserRecord | undefined>
  /**
   * One transaction: the new hash (and username, if given), the version bumped, and every
   * other session revoked. Made only if the password checked (`expectedVersion`) is still
   * current and the session asking (`sessionId`) is still live; otherwise nothing is written.
   * Throws UsernameTakenError.
   */
  changePassword (c: { id: string, passwordHash: string, username?: string, expectedVersion: number, sessionId: string, now: number }):
  Promise<{ user: UserRecord, revoked: Revoked } | PasswordChangeRefused>
  /** One transaction: the account deleted and every session revoked. undefined: no such user. */
  delete (id: string, now: number): Promise<Revoked | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: UsersRepository
  }
}

export const PROFILE_CACHE_MS = 1000
const PROFILE_CACHE_MAX = 50_000

const usernameKey = (username: string) => username.toLowerCase()
const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === 'SQLITE_CONSTRAINT_UNIQUE'

export default fp(async function usersRepository (fastify) {
  const { db } = fastify
  const columns = {
    id: users.id,
    username: users.username,
    passwordHash: users.passwordHash,
    credentialVersion: users.credentialVersion,
    createdAt: users.createdAt,
    updatedAt: users.updatedAt
  }
  // Prepared once: the hot path (GET /users/me) is one of these.
  const byId = db.select(columns).from(users).where(eq(users.id, sql.placeholder('id'))).prepare()
  const byKey = db.select(columns).from(users).where(eq(users.usernameKey, sql.placeholder('key'))).prepare()
  const profileById = db.select({ id: users.id, username: users.username, createdAt: users.createdAt, updatedAt: users.updatedAt })
    .from(users).where(eq(users.id, sql.placeholder('id'))).prepare()

  const profiles = new Map<string, { profile: UserProfile, until: number }>()
  const forget = (id: string) => { profiles.delete(id) }

  const repo: UsersRepository = {
    async create (username, passwordHash) {
      const now = Date.now()
      const row = { id: randomUUID(), username, usernameKey: usernameKey(username), passwordHash, createdAt: now, updatedAt: now }
      try {
        db.insert(users).values(row).run()
      } catch (err) {
        if (isUniqueViolation(err)) throw new UsernameTakenError()
        throw err
      }
      return { id: row.id, username, passwordHash, credentialVersion: 0, createdAt: now, updatedAt: now }
    },
    async findById (id) {
      return byId.get({ id })
    },
    async findProfile (id) {
      const now = Date.now()
      const hit = profiles.get(id)
      if (hit !== undefined && hit.until > now) return hit.profile
      const profile = profileById.get({ id })
      if (profile === undefined) {
        forget(id)
        return undefined
      }
      if (profiles.size >= PROFILE_CACHE_MAX) profiles.clear() // bounded, and cheap to refill
      profiles.set(id, { profile, until: now + PROFILE_CACHE_MS })
      return profile
    },
    async findByUsername (username) {
      return byKey.get({ key: usernameKey(username) })
    },
    async rename (id, username) {
      forget(id)
      try {
        db.update(users).set({ username, usernameKey: usernameKey(username), updatedAt: Date.now() }).where(eq(users.id, id)).run()
      } catch (err) {
        if (isUniqueViolation(err)) throw new UsernameTakenError()
        throw err
      }
      return byId.get({ id })
    },
    async changePassword (c) {
      forget(c.id)
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
          if (!changed) return tx.select({ id: users.id }).from(users).where(eq(users.id, c.id)).get() === undefined ? 'gone' as const : 'stale' as const
          const revoked = revokeSessionsOfUser(tx, c.id, 'password_change', c.now, c.sessionId)
          return { user: byId.get({ id: c.id })!, revoked }
        }, { behavior: 'immediate' })
      } catch (err) {
        if (isUniqueViolation(err)) throw new UsernameTakenError()
        throw err
      }
    },
    async delete (id, now) {
      forget(id)
      return db.transaction((tx) => {
        if (tx.delete(users).where(eq(users.id, id)).run().changes === 0) return undefined
        return revokeSessionsOfUser(tx, id, 'account_deleted', now)
      }, { behavior: 'immediate' })
    }
  }
  fastify.decorate('usersRepository', repo)
}, { name: 'users-repository', dependencies: ['db'] })
