import { and, desc, eq, lt, lte, or } from 'drizzle-orm'
import type { AuditRepository } from '../repositories'
import type { SqliteDb } from './client'
import { auditEvents } from './schema'

/** Security events on SQLite. */
export function sqliteAuditRepository ({ orm: db }: SqliteDb): AuditRepository {
  return {
    async insert (e) {
      db.insert(auditEvents).values(e).run()
    },

    async listForUser (userId, limit, before) {
      const older = before === undefined
        ? undefined
        // created_at <= c bounds the index range; the OR only sorts out the ties at c
        : and(
          lte(auditEvents.createdAt, before.createdAt),
          or(lt(auditEvents.createdAt, before.createdAt), lt(auditEvents.id, before.id))
        )
      return db.select().from(auditEvents)
        .where(and(eq(auditEvents.userId, userId), older))
        .orderBy(desc(auditEvents.createdAt), desc(auditEvents.id))
        .limit(limit)
        .all()
    },

    async prune (olderThan) {
      return db.delete(auditEvents).where(lt(auditEvents.createdAt, olderThan)).run().changes
    }
  }
}
