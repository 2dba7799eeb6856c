import { and, count, eq, gt, lt, min, sql } from 'drizzle-orm'
import type { RevocationEntry } from '../../revocation/contract'
import type { RevocationsRepository } from '../repositories'
import type { PostgresDb } from './client'
import { revocationLog, revokedTokens } from './schema'

type Row = { seq: number, kind: 'jti' | 'sid', id: string, until: number }

/**
 * The revocation log on PostgreSQL. Rows commit in `seq` order (revocation-log.ts), so
 * any one snapshot holds every row up to some `seq` and none after: reading from one
 * snapshot, and moving the position only to a row read, never skips a row.
 */
export function postgresRevocationsRepository (db: PostgresDb): RevocationsRepository {
  const { orm } = db
  const entryColumns = {
    seq: revocationLog.seq, kind: revocationLog.kind, id: revocationLog.targetId, until: revocationLog.until
  }
  // Expired rows too (until pruned): the position may then move past them.
  const after = orm.select(entryColumns).from(revocationLog)
    .where(gt(revocationLog.seq, sql.placeholder('position')))
    .orderBy(revocationLog.seq).prepare('revocation_log_after')
  const live = (rows: Row[], now: number) => rows.filter((r) => r.until > now)
    .map((r): RevocationEntry => ({ kind: r.kind, id: r.id, until: r.until }))

  return {
    async loadAll (now) {
      // Two statements, one snapshot (REPEATABLE READ): the position is exactly what was loaded.
      return db.transaction(async (tx) => {
        const rows = await tx.select(entryColumns).from(revocationLog).where(gt(revocationLog.until, now))
        const [{ last }] = await tx.select({ last: sql<string | null>`max(${revocationLog.seq})` }).from(revocationLog)
        return { entries: live(rows, now), position: last === null ? 0 : Number(last) }
      }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    },
    // One statement: one snapshot.
    async since (position, now) {
      const rows = await after.execute({ position })
      return { entries: live(rows, now), position: rows.length > 0 ? rows[rows.length - 1].seq : position }
    },
    async revokedSince (sessionId, since) {
      const [row] = await orm.select({ count: count(), earliest: min(revokedTokens.revokedAt) }).from(revokedTokens)
        .where(and(eq(revokedTokens.sessionId, sessionId), gt(revokedTokens.revokedAt, since)))
      return { count: Number(row?.count ?? 0), earliest: row?.earliest == null ? null : Number(row.earliest) }
    },
    async prune (now) {
      const tokens = await orm.delete(revokedTokens).where(lt(revokedTokens.expiresAt, now))
      const log = await orm.delete(revocationLog).where(lt(revocationLog.until, now))
      return { revokedTokens: tokens.rowCount ?? 0, log: log.rowCount ?? 0 }
    }
  }
}
