import fp from 'fastify-plugin'
import { gt, lt } from 'drizzle-orm'
import { revokedTokens } from '../../src/db/schema'

/** Data access for single revoked access tokens (by jti), kept until the token's own expiry. */
export interface RevocationsRepository {
  add (r: { jti: string, sessionId: string, expiresAt: number, now: number }): Promise<void>
  /** Revoked tokens that have not expired yet: what the blocklist must still hold. */
  active (now: number): Promise<Array<{ jti: string, expiresAt: number }>>
  prune (now: number): Promise<number>
}

declare module 'fastify' {
  interface FastifyInstance {
    revocationsRepository: RevocationsRepository
  }
}

export default fp(async function revocationsRepository (fastify) {
  const { db } = fastify
  const repo: RevocationsRepository = {
    async add (r) {
      db.insert(revokedTokens)
        .values({ jti: r.jti, sessionId: r.sessionId, expiresAt: r.expiresAt, revokedAt: r.now })
        .onConflictDoNothing()
        .run()
    },
    async active (now) {
      return db.select({ jti: revokedTokens.jti, expiresAt: revokedTokens.expiresAt }).from(revokedTokens)
        .where(gt(revokedTokens.expiresAt, now)).all()
    },
    async prune (now) {
      return db.delete(revokedTokens).where(lt(revokedTokens.expiresAt, now)).run().changes
    }
  }
  fastify.decorate('revocationsRepository', repo)
}, { name: 'revocations-repository', dependencies: ['db'] })
