import { and, asc, gt, sql } from 'drizzle-orm'
import type { LogRow, RevocationFeedRepository } from '../../feed/contract'
import type { RevocationEntry } from '../../revocation/contract'
import type { PostgresDb } from './client'
import { revocationLog } from './schema'

/**
 * The feed's reads of the revocation log. Rows commit in `seq` order (the advisory lock of
 * revocation-log.ts), so one statement's snapshot holds every row up to some `seq` and none
 * after; `page` takes two statements from one snapshot (REPEATABLE READ).
 */
/** Rows a snapshot reads per statement: each well inside the statement timeout. */
const SNAPSHOT_PAGE = 20_000

export function postgresRevocationFeedRepository (db: PostgresDb): RevocationFeedRepository {
  const { orm } = db
  const columns = {
    position: revocationLog.seq, kind: revocationLog.kind, id: revocationLog.targetId, until: revocationLog.until
  }
  const after = orm.select(columns).from(revocationLog)
    .where(gt(revocationLog.seq, sql.placeholder('position')))
    .orderBy(asc(revocationLog.seq)).limit(sql.placeholder('limit')).prepare('revocation_feed_after')
  const bounds = sql`SELECT min(${revocationLog.seq}) AS first, max(${revocationLog.seq}) AS last FROM ${revocationLog}`
  const numbers = (row: { first: unknown, last: unknown } | undefined) =>
    ({ first: Number(row?.first ?? 0), last: Number(row?.last ?? 0) })

  return {
    async after (position, limit) {
      return await after.execute({ position, limit }) as LogRow[]
    },
    async bounds () {
      const result = await orm.execute<{ first: string | null, last: string | null }>(bounds)
      return numbers(result.rows[0])
    },
    async page (position, now, limit) {
      return db.transaction(async (tx) => {
        const rows = await tx.select(columns).from(revocationLog)
          .where(and(gt(revocationLog.seq, position), gt(revocationLog.until, now)))
          .orderBy(asc(revocationLog.seq)).limit(limit) as LogRow[]
        if (rows.length === limit) return { rows, position: rows[rows.length - 1].position }
        const { last } = numbers((await tx.execute<{ first: string | null, last: string | null }>(bounds)).rows[0])
        return { rows, position: Math.max(position, last) }
      }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    },
    async snapshot (now) {
      return db.transaction(async (tx) => {
        const { last } = numbers((await tx.execute<{ first: string | null, last: string | null }>(bounds)).rows[0])
        const entries: RevocationEntry[] = []
        for (let cursor = 0; ;) {
          const rows = await tx.select(columns).from(revocationLog)
            .where(and(gt(revocationLog.seq, cursor), gt(revocationLog.until, now)))
            .orderBy(asc(revocationLog.seq)).limit(SNAPSHOT_PAGE)
          for (const r of rows) entries.push({ kind: r.kind, id: r.id, until: r.until })
          if (rows.length < SNAPSHOT_PAGE) break
          cursor = rows[rows.length - 1].position
        }
        return { entries, position: last }
      }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    }
  }
}
