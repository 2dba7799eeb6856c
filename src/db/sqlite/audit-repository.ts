import { and, desc, eq, lt } from 'drizzle-orm'
import type { AuditRepository } from '../repositories'
import { olderThan } from '../dialect-rules'
import type { SqliteDb } from './client'
import { auditEvents } from './schema'

/** Security events on SQLite. */
export function sqliteAuditRepository ({ orm: db }: SqliteDb): AuditRepository {
  return {
    async insert (e) {
      db.insert(auditEvents).values(e).run()
    },

    async listForUser (userId, limit, before) {
      const older = olderThan(auditEvents.createdAt, auditEvents.id, before)
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
