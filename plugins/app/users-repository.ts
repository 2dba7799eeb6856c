import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { eq, sql } from 'drizzle-orm'
import { users } from '../../src/db/schema'

export interface UserRecord {
  id: string
  username: string
  passwordHash: string
  createdAt: number
  updatedAt: number
}

export class UsernameTakenError extends Error {
  constructor () {
    super('Username is already taken')
    this.name = 'UsernameTakenError'
  }
}

/** Data access for accounts. Async so that a second SQL dialect can slot in without touching callers. */
export interface UsersRepository {
  create (username: string, passwordHash: string): Promise<UserRecord>
  findById (id: string): Promise<UserRecord | undefined>
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
      try {
        db.update(users).set(set).where(eq(users.id, id)).run()
      } catch (err) {
        if (isUniqueViolation(err)) throw new UsernameTakenError()
        throw err
      }
      return byId.get({ id })
    },
    async delete (id) {
      return db.delete(users).where(eq(users.id, id)).run().changes > 0
    }
  }
  fastify.decorate('usersRepository', repo)
}, { name: 'users-repository', dependencies: ['db'] })
