import fp from 'fastify-plugin'
import { and, gt, lt, sql } from 'drizzle-orm'
import { revocationLog, revokedTokens } from '../../src/db/schema'
import { appendToLog } from '../../src/db/revocation-log'
import type { RevocationEntry, RevocationLog } from '../../src/revocation/contract'

/**
 * Data access for the revocation log (what the blocklist is loaded and reconciled from) and
 * for single revoked access tokens (by jti), each kept until the token's own expiry.
 */
export interface RevocationsRepository extends RevocationLog {
  /**
   * Revokes one access token (and logs it), once: false when it was already revoked. That
   * makes a token renewed on use consumable by exactly one request.
   */
  revokeToken (r: { jti: string, sessionId: string, expiresAt: number, now: number }): Promise<boolean>
  prune (now: number): Promise<{ revokedTokens: number, log: number }>
}

declare module 'fastify' {
  interface FastifyInstance {
    revocationsRepository: RevocationsRepository
  }
}

export default fp(async function revocationsRepository (fastify) {
  const { db } = fastify
  const entryColumns = { seq: revocationLog.seq, kind: revocationLog.kind, id: revocationLog.targetId, until: revocationLog.until }
  const after = db.select(entryColumns).from(revocationLog)
    .where(and(gt(revocationLog.seq, sql.placeholder('position')), gt(revocationLog.until, sql.placeholder('now'))))
    .orderBy(revocationLog.seq).prepare()
  const lastSeq = db.select({ seq: sql<number | null>`max(${revocationLog.seq})` }).from(revocationLog).prepare()
  const toEntries = (rows: Array<{ kind: 'jti' | 'sid', id: string, until: number }>) =>
    rows.map((r): RevocationEntry => ({ kind: r.kind, id: r.id, until: r.until }))

  const repo: RevocationsRepository = {
    async loadAll (now) {
      // One read transaction: the position is exactly the last row loaded.
      return db.transaction((tx) => {
        const rows = tx.select(entryColumns).from(revocationLog).where(gt(revocationLog.until, now)).all()
        const position = lastSeq.get()?.seq ?? 0
        return { entries: toEntries(rows), position }
      })
    },
    // SQLite commits one writer at a time, so rows become visible in `seq` order and
    // reading after the last position seen never skips one.
    async since (position, now) {
      const rows = after.all({ position, now })
      const last = rows.length > 0 ? rows[rows.length - 1].seq : Math.max(position, lastSeq.get()?.seq ?? 0)
      return { entries: toEntries(rows), position: last }
    },
    async revokeToken (r) {
      return db.transaction((tx) => {
        const inserted = tx.insert(revokedTokens)
          .values({ jti: r.jti, sessionId: r.sessionId, expiresAt: r.expiresAt, revokedAt: r.now })
          .onConflictDoNothing()
          .run().changes > 0
        if (inserted) appendToLog(tx, [{ kind: 'jti', id: r.jti, until: r.expiresAt }], r.now)
        return inserted
      }, { behavior: 'immediate' })
    },
    async prune (now) {
      return {
        revokedTokens: db.delete(revokedTokens).where(lt(revokedTokens.expiresAt, now)).run().changes,
        log: db.delete(revocationLog).where(lt(revocationLog.until, now)).run().changes
      }
    }
  }
  fastify.decorate('revocationsRepository', repo)
}, { name: 'revocations-repository', dependencies: ['db'] })
