import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RequestContext } from '../../src/request-context'
import type { AccountRecord } from '../../src/db/repositories'
import { AdminRequiredError, UserNotFoundError } from '../../src/errors'
import { hashOpaqueToken } from './mfa'

export const ADMIN_ROLE = 'admin'
export const RESET_TOKEN_TTL = 900

/**
 * What an admin can do to an account. Each call names the acting admin (`actorId`, recorded
 * on the security event) and throws UserNotFoundError (404) for an unknown id. Revocations go
 * through fastify.sessions.revokeAllOfUser (the path a logout-all takes): committed, published
 * to every instance, then answered.
 */
export interface Admin {
  /** onRequest hook, after authenticate: the token's user holds the admin role now (read from the database), or 403 */
  requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  disable (id: string, actorId: string, ctx: RequestContext): Promise<AccountRecord>
  enable (id: string, actorId: string, ctx: RequestContext): Promise<AccountRecord>
  logout (id: string, actorId: string, ctx: RequestContext): Promise<void>
  removeMfa (id: string, actorId: string, ctx: RequestContext): Promise<void>
  issueReset (id: string, actorId: string, ctx: RequestContext): Promise<{ token: string, expiresIn: number }>
  remove (id: string, actorId: string, ctx: RequestContext): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    admin: Admin
  }
}

export default fp(async function admin (fastify) {
  const { accountsRepository: repo, sessions, audit, revocationStore: store } = fastify

  const existing = async (id: string) => {
    const account = await repo.find(id)
    if (account === undefined) throw new UserNotFoundError()
    return account
  }

  const service: Admin = {
    async requireAdmin (request) {
      // Never cached: taking the role away works at the next request.
      const me = await repo.find(request.auth!.sub)
      if (me === undefined || me.disabled || !me.roles.includes(ADMIN_ROLE)) throw new AdminRequiredError()
    },

    async disable (id, actorId, ctx) {
      await existing(id)
      await store.ping() // the sessions must be revocable: 503 before the account changes
      // First the flag (no login creates a session after it: sessions `create` checks it),
      // then every session there was: none can outlive the answer. Repeating it after a 503
      // publishes again.
      const account = await repo.setDisabled(id, true, Date.now())
      if (account === undefined) throw new UserNotFoundError()
      const revoked = await sessions.revokeAllOfUser(id, 'account_disabled')
      await audit.record({ event: 'admin.user_disabled', userId: id, actorId, sessionsRevoked: revoked }, ctx)
      return account
    },

    async enable (id, actorId, ctx) {
      const account = await repo.setDisabled(id, false, Date.now())
      if (account === undefined) throw new UserNotFoundError()
      await audit.record({ event: 'admin.user_enabled', userId: id, actorId }, ctx)
      return account
    },

    async logout (id, actorId, ctx) {
      await existing(id)
      const revoked = await sessions.revokeAllOfUser(id, 'admin_logout')
      await audit.record({ event: 'admin.user_logged_out', userId: id, actorId, sessionsRevoked: revoked }, ctx)
    },

    async removeMfa (id, actorId, ctx) {
      await existing(id)
      await repo.disableMfa(id)
      await audit.record({ event: 'admin.mfa_removed', userId: id, actorId }, ctx)
    },

    async issueReset (id, actorId, ctx) {
      const token = randomBytes(32).toString('base64url')
      const now = Date.now()
      const created = await repo.createResetToken({
        tokenHash: hashOpaqueToken(token), userId: id, now, expiresAt: now + RESET_TOKEN_TTL * 1000
      })
      if (!created) throw new UserNotFoundError()
      await audit.record({ event: 'admin.password_reset_issued', userId: id, actorId }, ctx)
      return { token, expiresIn: RESET_TOKEN_TTL }
    },

    async remove (id, actorId, ctx) {
      if (!await fastify.accounts.remove(id, ctx)) throw new UserNotFoundError()
      await audit.record({ event: 'admin.user_deleted', userId: id, actorId }, ctx)
    }
  }
  fastify.decorate('admin', service)
}, { name: 'admin', dependencies: ['repositories', 'sessions', 'audit', 'revocation-store', 'accounts', 'mfa'] })
