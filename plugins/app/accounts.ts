import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { User } from '../../src/schemas/users'
import type { UserProfile, UserRecord } from './users-repository'
import { isCommonPassword } from '../../src/security/password-policy'

export class WeakPasswordError extends Error {
  readonly statusCode = 400
  constructor () {
    super('Password is too common; choose another')
    this.name = 'WeakPasswordError'
  }
}

export class WrongCurrentPasswordError extends Error {
  readonly statusCode = 403
  constructor () {
    super('current_password is wrong')
    this.name = 'WrongCurrentPasswordError'
  }
}

export interface AccountChange {
  username?: string
  password?: string
  /** when given, it must match; `requireCurrentPassword` makes it mandatory for a password change */
  currentPassword?: string
}

/**
 * Account use cases shared by the service API and the seed-compatible routes:
 * the routes of both surfaces are thin adapters over these.
 */
export interface Accounts {
  /**
   * Throws UsernameTakenError (409), WeakPasswordError (400) or RateLimitedError (429).
   * `clientIp` (request.ip) is what registrations are throttled by.
   */
  register (username: string, password: string, log: FastifyBaseLogger, clientIp?: string): Promise<UserRecord>
  /**
   * The user when the password matches; null otherwise, after the same work either way.
   * Throws RateLimitedError (429), before any hashing, when the client IP or the account
   * has had too many failures.
   */
  authenticate (username: string, password: string, log: FastifyBaseLogger, clientIp?: string): Promise<UserRecord | null>
  /** A password change revokes every other session of the user. undefined: the user is gone. */
  update (userId: string, sessionId: string, change: AccountChange, log: FastifyBaseLogger): Promise<UserRecord | undefined>
  /** Revokes every session, then deletes the account (its username is free again). */
  remove (userId: string, log: FastifyBaseLogger): Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts
  }
}

export function toUser (u: UserProfile): User {
  return {
    id: u.id,
    username: u.username,
    created_at: new Date(u.createdAt).toISOString(),
    updated_at: new Date(u.updatedAt).toISOString()
  }
}

export default fp(async function accounts (fastify) {
  const { usersRepository: users, passwords, sessions, rateLimits } = fastify

  const service: Accounts = {
    async register (username, password, log, clientIp) {
      await rateLimits.checkRegister(clientIp)
      if (isCommonPassword(password)) throw new WeakPasswordError()
      const user = await users.create(username, await passwords.hash(password))
      log.info({ event: 'user.registered', userId: user.id }, 'user registered')
      return user
    },

    async authenticate (username, password, log, clientIp) {
      await rateLimits.checkLogin(clientIp, username)
      const user = await users.findByUsername(username)
      const ok = await passwords.verify(password, user?.passwordHash ?? null)
      if (ok && user !== undefined) {
        log.info({ event: 'login.success', userId: user.id }, 'login succeeded')
        return user
      }
      // The username is not logged: it may be a password typed into the wrong field.
      log.info({ event: 'login.failure', knownUser: user !== undefined }, 'login failed')
      await rateLimits.recordLoginFailure(clientIp, username)
      return null
    },

    async update (userId, sessionId, change, log) {
      const user = await users.findById(userId)
      if (user === undefined) return undefined
      if (change.currentPassword !== undefined && !(await passwords.verify(change.currentPassword, user.passwordHash))) {
        log.info({ event: 'user.update_denied', userId }, 'wrong current password')
        throw new WrongCurrentPasswordError()
      }
      let passwordHash: string | undefined
      if (change.password !== undefined) {
        if (isCommonPassword(change.password)) throw new WeakPasswordError()
        // The other sessions must be revocable: 503 before the password changes, not after.
        await fastify.revocationStore.ping()
        passwordHash = await passwords.hash(change.password)
      }
      const updated = await users.update(userId, { username: change.username, passwordHash })
      if (passwordHash !== undefined) {
        const revoked = await sessions.revokeAllOfUser(userId, 'password_change', sessionId)
        log.info({ event: 'user.password_changed', userId, sessionsRevoked: revoked.length }, 'password changed')
      }
      if (change.username !== undefined) log.info({ event: 'user.renamed', userId }, 'username changed')
      return updated
    },

    async remove (userId, log) {
      // revokeAllOfUser checks the store first: nothing is deleted when it is down.
      const revoked = await sessions.revokeAllOfUser(userId, 'account_deleted')
      const deleted = await users.delete(userId)
      log.info({ event: 'user.deleted', userId, sessionsRevoked: revoked.length }, 'account deleted')
      return deleted
    }
  }

  fastify.decorate('accounts', service)
}, { name: 'accounts', dependencies: ['passwords', 'users-repository', 'sessions', 'rate-limits'] })
