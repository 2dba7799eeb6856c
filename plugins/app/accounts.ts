import fp from 'fastify-plugin'
import type { RequestContext } from '../../src/request-context'
import type { TokenPair } from '../../src/schemas/tokens'
import type { UserRecord } from './users-repository'
import type { Renewal } from './sessions-repository'
import { isCommonPassword } from '../../src/security/password-policy'
import {
  CurrentPasswordRequiredError,
  InvalidTokenError,
  OverloadedError,
  RateLimitedError,
  WeakPasswordError,
  WrongCurrentPasswordError
} from '../../src/errors'

export interface AccountChange {
  username?: string
  password?: string
  /** required with `password`; when given, it must match */
  currentPassword?: string
}

/**
 * Account use cases shared by the service API and the seed-compatible routes:
 * the routes of both surfaces are thin adapters over these.
 */
export interface Accounts {
  /**
   * Throws UsernameTakenError (409), WeakPasswordError (400), RateLimitedError (429) or
   * OverloadedError (503). Registrations are throttled by `ctx.ip`.
   */
  register (username: string, password: string, ctx: RequestContext): Promise<UserRecord>
  /**
   * A new session when the password matches; null otherwise, after the same work either way.
   * Throws RateLimitedError (429) before any hashing, and OverloadedError (503) when more
   * hashing is queued than can finish in time.
   */
  login (username: string, password: string, ctx: RequestContext):
  Promise<{ user: UserRecord, tokens: TokenPair } | null>
  /**
   * A password change needs the current password and revokes every other session of the
   * user, in one transaction that also checks that the password checked is still current
   * and the asking session still live (else nothing changes: 403 or 401). undefined: the
   * user is gone. A wrong current_password is counted like a failed login (and per
   * session): RateLimitedError (429) once a limit is spent, before any hashing. A `renewal`
   * (Sessions.prepareRenewal) is consumed in the transaction of the change:
   * InvalidTokenError, and nothing changed, when it cannot be.
   */
  update (userId: string, sessionId: string, change: AccountChange, ctx: RequestContext, renewal?: Renewal):
  Promise<UserRecord | undefined>
  /** Revokes every session and deletes the account (its username is free again). */
  remove (userId: string, ctx: RequestContext): Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts
  }
}

export default fp(async function accounts (fastify) {
  const { usersRepository: users, passwords, sessions, rateLimits, metrics, audit } = fastify
  const countLogin = (err: unknown): never => {
    if (err instanceof RateLimitedError) metrics.logins.inc({ outcome: 'rate_limited' })
    else if (err instanceof OverloadedError) metrics.logins.inc({ outcome: 'shed' })
    throw err
  }

  /** current_password: counted like a login's password, per account, address and session. */
  const confirmPassword = async (user: UserRecord, sessionId: string, password: string, ctx: RequestContext) => {
    const attempt = { account: user.username, ip: ctx.ip, sessionId }
    let ok: boolean
    try {
      await rateLimits.checkPassword(attempt)
      ok = await passwords.verify(password, user.passwordHash, ctx.signal)
    } catch (err) {
      await rateLimits.cancelled(attempt).catch(() => {}) // refused or never judged (shed, client gone): no failure
      throw err
    }
    if (ok) await rateLimits.succeeded(attempt)
    return ok
  }

  const service: Accounts = {
    async register (username, password, ctx) {
      await rateLimits.consumeRegister(ctx.ip)
      if (isCommonPassword(password)) throw new WeakPasswordError()
      const release = rateLimits.hashingSlot(ctx.ip)
      const passwordHash = await passwords.hash(password, ctx.signal).finally(release)
      const user = await users.create(username, passwordHash)
      await audit.record({ event: 'user.registered', userId: user.id }, ctx)
      return user
    },

    async login (username, password, ctx) {
      const { ip, signal } = ctx
      const attempt = { account: username, ip }
      let judged = false
      let release: (() => void) | undefined
      let ok = false
      let user: UserRecord | undefined
      try {
        release = rateLimits.hashingSlot(ip)
        await rateLimits.checkPassword(attempt)
        user = await users.findByUsername(username)
        ok = await passwords.verify(password, user?.passwordHash ?? null, signal)
        judged = true
      } catch (err) {
        countLogin(err)
      } finally {
        release?.()
        // Refused, shed (503), client gone or database down: the password was never judged,
        // so the attempt is no failure (a victim retrying through a flood must not reach 429).
        if (!judged) await rateLimits.cancelled(attempt).catch(() => {})
      }
      // The session is created only if the password just checked is still the current one:
      // a login that raced a password change or a deletion fails like a wrong password.
      const started = ok && user !== undefined ? await sessions.start(user.id, user.credentialVersion) : null
      if (started !== null && user !== undefined) {
        const { sessionId, ...tokens } = started
        await rateLimits.succeeded(attempt)
        metrics.logins.inc({ outcome: 'success' })
        await audit.record({ event: 'login.success', userId: user.id, sessionId }, ctx)
        return { user, tokens }
      }
      // The username is never recorded: it may be a password typed into the wrong field. The
      // account's id is, when there is one: its owner sees the attempt. Unknown or not, the
      // same work is done (one event either way), so timing tells nothing either.
      metrics.logins.inc({ outcome: 'bad_credentials' })
      const reason = ok ? 'credentials_changed' : 'bad_credentials'
      await audit.record({ event: 'login.failure', userId: user?.id, reason }, ctx)
      return null
    },

    async update (userId, sessionId, change, ctx, renewal) {
      const { signal } = ctx
      type Event = 'user.update_denied' | 'user.renamed' | 'user.password_changed'
      const record = async (event: Event, extra: { reason?: string, sessionsRevoked?: number } = {}) =>
        await audit.record({ event, userId, sessionId, ...extra }, ctx)
      if (change.password !== undefined && change.currentPassword === undefined) {
        throw new CurrentPasswordRequiredError()
      }
      const user = await users.findById(userId)
      if (user === undefined) return undefined
      const rename = async () => {
        const renamed = change.username === undefined ? user : await users.rename(userId, change.username, renewal)
        if (renamed !== undefined && change.username !== undefined) await record('user.renamed')
        return renamed
      }
      if (change.currentPassword === undefined) return await rename()
      // current_password is checked like a login's password (counted per account, address and
      // session: a stolen token cannot guess freely), and its hashing, with the new
      // password's, holds one of the client's few hashing slots.
      const release = rateLimits.hashingSlot(ctx.ip, user.username)
      let passwordHash: string | undefined
      try {
        if (!(await confirmPassword(user, sessionId, change.currentPassword, ctx))) {
          await record('user.update_denied', { reason: 'wrong_current_password' })
          throw new WrongCurrentPasswordError()
        }
        if (change.password !== undefined) {
          if (isCommonPassword(change.password)) throw new WeakPasswordError()
          // The other sessions must be revocable: 503 before the password changes, not after.
          await fastify.revocationStore.ping()
          passwordHash = await passwords.hash(change.password, signal)
        }
      } finally {
        release()
      }
      if (passwordHash === undefined) return await rename()
      const result = await users.changePassword({
        id: userId,
        passwordHash,
        username: change.username,
        expectedVersion: user.credentialVersion,
        sessionId,
        now: Date.now(),
        renewal
      })
      if (result === 'gone') return undefined
      if (result === 'session_revoked') throw new InvalidTokenError('Token has been revoked')
      if (result === 'stale') throw new WrongCurrentPasswordError('current_password is no longer the current password')
      metrics.revocations.inc({ cause: 'password_change' }, result.revoked.count)
      // Recorded once committed, before the publish: a publish that fails (503) does not undo it.
      await record('user.password_changed', { sessionsRevoked: result.revoked.count })
      if (change.username !== undefined) await record('user.renamed')
      await fastify.revocationStore.revoke(result.revoked.entries)
      return result.user
    },

    async remove (userId, ctx) {
      await fastify.revocationStore.ping() // 503 before anything is deleted, when the store is down
      const revoked = await users.delete(userId, Date.now())
      if (revoked === undefined) return false
      metrics.revocations.inc({ cause: 'account_deleted' }, revoked.count)
      await audit.record({ event: 'user.deleted', userId, sessionsRevoked: revoked.count }, ctx)
      await fastify.revocationStore.revoke(revoked.entries)
      return true
    }
  }

  fastify.decorate('accounts', service)
}, { name: 'accounts', dependencies: ['passwords', 'users-repository', 'sessions', 'rate-limits', 'metrics', 'audit'] })
