import { and, count, eq, gt, lt, min, sql } from 'drizzle-orm'
import type { RevocationEntry } from '../../revocation/contract'
import type { RevocationsRepository } from '../repositories'
import type { SqliteDb } from './client'
import { revocationLog, revokedTokens } from './schema'

export function sqliteRevocationsRepository ({ orm: db }: SqliteDb): RevocationsRepository {
  const entryColumns = {
    seq: revocationLog.seq, kind: revocationLog.kind, id: revocationLog.targetId, until: revocationLog.until
  }
  const after = db.select(entryColumns).from(revocationLog)
    .where(and(gt(revocationLog.seq, sql.placeholder('position')), gt(revocationLog.until, sql.placeholder('now'))))
    .orderBy(revocationLog.seq).prepare()
  const lastSeq = db.select({ seq: sql<number | null>`max(${revocationLog.seq})` }).from(revocationLog).prepare()
  const toEntries = (rows: Array<{ kind: 'jti' | 'sid', id: string, until: number }>) =>
    rows.map((r): RevocationEntry => ({ kind: r.kind, id: r.id, until: r.until }))

  return {
    async loadAll (now) {
      // One read transaction: the position is exactly the last row loaded.
      return db.transaction((tx) => {
        const rows = tx.select(entryColumns).from(revocationLog).where(gt(revocationLog.until, now)).all()
        const position = lastSeq.get()?.seq ?? 0
        return { entries: toEntries(rows), position }
      })
    },
    // SQLite commits one writer at a time, so rows become visible in `seq` order and
    // reading after the last position seen never skips one. One read transaction: another
    // process sharing the file could otherwise commit a row between the two statements,
    // and the position would pass it unread.
    async since (position, now) {
      return db.transaction(() => {
        const rows = after.all({ position, now })
        const last = rows.length > 0 ? rows[rows.length - 1].seq : Math.max(position, lastSeq.get()?.seq ?? 0)
        return { entries: toEntries(rows), position: last }
      })
    },
    async revokedSince (sessionId, since) {
      const row = db.select({ count: count(), earliest: min(revokedTokens.revokedAt) }).from(revokedTokens)
        .where(and(eq(revokedTokens.sessionId, sessionId), gt(revokedTokens.revokedAt, since))).get()
      return { count: row?.count ?? 0, earliest: row?.earliest ?? null }
    },
    async prune (now) {
      return {
        revokedTokens: db.delete(revokedTokens).where(lt(revokedTokens.expiresAt, now)).run().changes,
        log: db.delete(revocationLog).where(lt(revocationLog.until, now)).run().changes
      }
    }
  }
}
