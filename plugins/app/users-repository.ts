import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { eq, sql } from 'drizzle-orm'
import { users } from '../../src/db/schema'
import { UsernameTakenError } from '../../src/errors'

export interface UserRecord {
  id: string
  username: string
  passwordHash: string
  createdAt: number
  updatedAt: number
}

/** What the API shows of a user: no password hash. */
export type UserProfile = Omit<UserRecord, 'passwordHash'>

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
  /** Throws UsernameTakenError; returns undefined when the user is gone. */
  update (id: string, change: { username?: string, passwordHash?: string }): Promise<UserRecord | undefined>
  delete (id: string): Promise<boolean>
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
      return { id: row.id, username, passwordHash, createdAt: now, updatedAt: now }
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
    async update (id, change) {
      const set: Partial<typeof users.$inferInsert> = { updatedAt: Date.now() }
      if (change.username !== undefined) {
        set.username = change.username
        set.usernameKey = usernameKey(change.username)
      }
      if (change.passwordHash !== undefined) set.passwordHash = change.passwordHash
      forget(id)
      try {
        db.update(users).set(set).where(eq(users.id, id)).run()
      } catch (err) {
        if (isUniqueViolation(err)) throw new UsernameTakenError()
        throw err
      }
      return byId.get({ id })
    },
    async delete (id) {
      forget(id)
      return db.delete(users).where(eq(users.id, id)).run().changes > 0
    }
  }
  fastify.decorate('usersRepository', repo)
}, { name: 'users-repository', dependencies: ['db'] })
