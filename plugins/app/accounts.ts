import fp from 'fastify-plugin'
import type { RequestContext } from '../../src/request-context'
import type { TokenPair } from '../../src/schemas/tokens'
import type { Renewal, UserRecord } from '../../src/db/repositories'
import { randomBytes } from 'node:crypto'
import bcrypt from 'bcrypt'
import { isCommonPassword } from '../../src/security/password-policy'
import {
  AccountDisabledError,
  CurrentPasswordRequiredError,
  InvalidCodeError,
  InvalidResetTokenError,
  InvalidTokenError,
  MfaRequiredError,
  OverloadedError,
  RateLimitedError,
  WeakPasswordError,
  WrongCurrentPasswordError
} from '../../src/errors'
import { hashOpaqueToken, MFA_MAX_WRONG_CODES, MFA_TOKEN_TTL, type MfaInput } from './mfa'

export interface AccountChange {
  username?: string
  password?: string
  /** required with `password`; when given, it must match */
  currentPassword?: string
}

/** A login's answer: a session, or (TOTP on) the token of its second step. */
export type LoginResult =
  | { user: UserRecord, tokens: TokenPair }
  | { user: UserRecord, mfa: { token: string, expiresIn: number } }

export interface LoginOptions {
  /**
   * 'challenge' (the service API): a TOTP user gets an mfa_token for POST /auth/login/mfa.
   * 'refuse' (the compat routes, which have no second step): MfaRequiredError (401).
   */
  mfa: 'challenge' | 'refuse'
}

/** The cost a bcrypt hash was made with ($2b$12$... -> 12). */
export const bcryptCostOf = (hash: string) => bcrypt.getRounds(hash)

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
   * hashing is queued than can finish in time; AccountDisabledError (403) for the right
   * password of a disabled account. A hash made at a lower cost than BCRYPT_COST is
   * replaced in the same request (nothing revoked).
   */
  login (username: string, password: string, ctx: RequestContext, options?: LoginOptions):
  Promise<LoginResult | null>
  /**
   * The second step: a new session for a live mfa_token and a right code (each TOTP step
   * and recovery code once). Throws InvalidCodeError (401) otherwise; every wrong code
   * counts as a failed login of the account, and spends one of the token's 5.
   */
  loginMfa (mfaToken: string, input: MfaInput, ctx: RequestContext): Promise<TokenPair>
  /** An admin-issued reset token's use: the new password set, every session revoked. 400 otherwise. */
  resetPassword (resetToken: string, newPassword: string, ctx: RequestContext): Promise<void>
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
  const { usersRepository: users, accountsRepository, passwords, sessions, rateLimits, metrics, audit } = fastify
  const { bcryptCost } = fastify.config
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

  // docs/api.md, "Password hash upgrades": a verified password whose hash has a lower cost
  // is hashed again at BCRYPT_COST, written only if it is still the current password.
  const upgradeHash = async (user: UserRecord, password: string, ctx: RequestContext, lastLoginAt?: number) => {
    if (bcryptCostOf(user.passwordHash) >= bcryptCost) {
      if (lastLoginAt !== undefined) await accountsRepository.recordLogin({ id: user.id, lastLoginAt })
      return
    }
    const to = await passwords.hash(password, ctx.signal)
    const rehash = { from: user.passwordHash, to, expectedVersion: user.credentialVersion }
    await accountsRepository.recordLogin({ id: user.id, lastLoginAt, rehash })
    await audit.record({ event: 'password.rehashed', userId: user.id }, ctx)
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

    async login (username, password, ctx, options = { mfa: 'challenge' }) {
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
      // A disabled account's right password stays counted: it opens nothing.
      if (ok && user !== undefined && user.disabled) {
        metrics.logins.inc({ outcome: 'bad_credentials' })
        await audit.record({ event: 'login.failure', userId: user.id, reason: 'account_disabled' }, ctx)
        throw new AccountDisabledError()
      }
      if (ok && user !== undefined && user.mfaEnabled) {
        if (options.mfa === 'refuse') {
          metrics.logins.inc({ outcome: 'bad_credentials' })
          await audit.record({ event: 'login.failure', userId: user.id, reason: 'mfa_required' }, ctx)
          throw new MfaRequiredError()
        }
        // The password was right: its count is given back, but the address is remembered as
        // the owner's only once the second factor is right too (loginMfa), and the second
        // step counts its own wrong codes.
        await rateLimits.cancelled(attempt).catch(() => {})
        await upgradeHash(user, password, ctx)
        const token = randomBytes(32).toString('base64url')
        const now = Date.now()
        await accountsRepository.createChallenge({
          tokenHash: hashOpaqueToken(token),
          userId: user.id,
          credentialVersion: user.credentialVersion,
          now,
          expiresAt: now + MFA_TOKEN_TTL * 1000
        })
        await audit.record({ event: 'login.mfa_required', userId: user.id }, ctx)
        return { user, mfa: { token, expiresIn: MFA_TOKEN_TTL } }
      }
      // The session is created only if the password just checked is still the current one
      // and the account not disabled meanwhile: a login that raced a password change, a
      // deletion or a disable fails like a wrong password.
      const started = ok && user !== undefined ? await sessions.start(user.id, user.credentialVersion) : null
      if (started !== null && user !== undefined) {
        const { sessionId, ...tokens } = started
        await rateLimits.succeeded(attempt)
        await upgradeHash(user, password, ctx, Date.now())
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

    async loginMfa (mfaToken, input, ctx) {
      const { ip } = ctx
      const tokenHash = hashOpaqueToken(mfaToken)
      const challenge = await accountsRepository.findChallenge(tokenHash, Date.now(), MFA_MAX_WRONG_CODES)
      const user = challenge === undefined ? undefined : await users.findById(challenge.userId)
      if (challenge === undefined || user === undefined) throw new InvalidCodeError(401)
      // Counted before the code is checked, as a password is: a burst is counted as a burst.
      // A wrong code leaves the count standing; a refused or unanswered check gives it back.
      const attempt = { account: user.username, ip }
      const now = Date.now()
      let proof: Awaited<ReturnType<typeof fastify.mfa.proofOf>>
      try {
        await rateLimits.checkPassword(attempt)
        proof = await fastify.mfa.proofOf(user.id, input, now)
      } catch (err) {
        await rateLimits.cancelled(attempt).catch(() => {})
        return countLogin(err)
      }
      const outcome = proof === null
        ? 'wrong' as const
        : await accountsRepository.completeChallenge(tokenHash, proof, now, MFA_MAX_WRONG_CODES)
      if (outcome !== 'ok') {
        if (outcome !== 'invalid') await accountsRepository.failChallenge(tokenHash)
        metrics.logins.inc({ outcome: 'bad_credentials' })
        await audit.record({ event: 'login.failure', userId: user.id, reason: 'bad_code' }, ctx)
        throw new InvalidCodeError(401)
      }
      // The password version step one checked: a change (or a disable) since then wins.
      const started = await sessions.start(user.id, challenge.credentialVersion)
      if (started === null) {
        metrics.logins.inc({ outcome: 'bad_credentials' })
        await audit.record({ event: 'login.failure', userId: user.id, reason: 'credentials_changed' }, ctx)
        throw new InvalidCodeError(401)
      }
      const { sessionId, ...tokens } = started
      await rateLimits.succeeded(attempt)
      await accountsRepository.recordLogin({ id: user.id, lastLoginAt: now })
      metrics.logins.inc({ outcome: 'success' })
      if ('recoveryCodeHash' in proof!) {
        await audit.record({
          event: 'mfa.recovery_code_used',
          userId: user.id,
          sessionId
        }, ctx)
      }
      await audit.record({ event: 'login.success', userId: user.id, sessionId }, ctx)
      return tokens
    },

    async resetPassword (resetToken, newPassword, ctx) {
      const tokenHash = hashOpaqueToken(resetToken)
      // A cheap look first: an unknown token costs no bcrypt.
      if (!await accountsRepository.resetTokenLive(tokenHash, Date.now())) throw new InvalidResetTokenError()
      if (isCommonPassword(newPassword)) throw new WeakPasswordError()
      await fastify.revocationStore.ping() // the sessions must be revocable: 503 before anything changes
      const passwordHash = await passwords.hash(newPassword, ctx.signal)
      const result = await accountsRepository.resetPassword(tokenHash, passwordHash, Date.now())
      if (result === null) throw new InvalidResetTokenError() // used or expired meanwhile (one use wins)
      metrics.revocations.inc({ cause: 'password_reset' }, result.revoked.count)
      await audit.record({ event: 'password.reset', userId: result.userId, sessionsRevoked: result.revoked.count }, ctx)
      await fastify.revocationStore.revoke(result.revoked.entries)
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
}, {
  name: 'accounts',
  dependencies: ['config', 'passwords', 'repositories', 'sessions', 'rate-limits', 'metrics', 'audit', 'mfa',
    'revocation-store']
})
