import { and, asc, gt, sql } from 'drizzle-orm'
import type { LogRow, RevocationFeedRepository } from '../../feed/contract'
import type { SqliteDb } from './client'
import { revocationLog } from './schema'

/**
 * The feed's reads of the revocation log. SQLite commits one writer at a time, so rows
 * become visible in `seq` order; `page` reads in one transaction so that the position it
 * names is exactly what it read, even with another process writing the same file.
 */
export function sqliteRevocationFeedRepository ({ orm: db }: SqliteDb): RevocationFeedRepository {
  const columns = {
    position: revocationLog.seq, kind: revocationLog.kind, id: revocationLog.targetId, until: revocationLog.until
  }
  const after = db.select(columns).from(revocationLog)
    .where(gt(revocationLog.seq, sql.placeholder('position')))
    .orderBy(asc(revocationLog.seq)).limit(sql.placeholder('limit')).prepare()
  const live = db.select(columns).from(revocationLog)
    .where(and(gt(revocationLog.seq, sql.placeholder('position')), gt(revocationLog.until, sql.placeholder('now'))))
    .orderBy(asc(revocationLog.seq)).limit(sql.placeholder('limit')).prepare()
  const bounds = db.select({
    first: sql<number | null>`min(${revocationLog.seq})`, last: sql<number | null>`max(${revocationLog.seq})`
  }).from(revocationLog).prepare()

  return {
    async after (position, limit) {
      return after.all({ position, limit }) as LogRow[]
    },
    async bounds () {
      const row = bounds.get()
      return { first: row?.first ?? 0, last: row?.last ?? 0 }
    },
    async page (position, now, limit) {
      return db.transaction(() => {
        const rows = live.all({ position, now, limit }) as LogRow[]
        const full = rows.length === limit
        return { rows, position: full ? rows[rows.length - 1].position : Math.max(position, bounds.get()?.last ?? 0) }
      })
    },
    // SQLite has no statement timeout: one statement, in the transaction that names the position.
    async snapshot (now) {
      return db.transaction(() => {
        const rows = live.all({ position: 0, now, limit: -1 }) as LogRow[]
        return { entries: rows.map(({ kind, id, until }) => ({ kind, id, until })), position: bounds.get()?.last ?? 0 }
      })
    }
  }
}
