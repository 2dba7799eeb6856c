import { and, desc, eq, lt } from 'drizzle-orm'
import type { AuditRepository } from '../repositories'
import { olderThan } from '../dialect-rules'
import type { PostgresDb } from './client'
import { auditEvents } from './schema'

/** Security events on PostgreSQL. Each insert is one statement on the pool, outside any transaction. */
export function postgresAuditRepository ({ orm }: PostgresDb): AuditRepository {
  return {
    async insert (e) {
      await orm.insert(auditEvents).values(e)
    },

    async listForUser (userId, limit, before) {
      const older = olderThan(auditEvents.createdAt, auditEvents.id, before)
      return await orm.select().from(auditEvents)
        .where(and(eq(auditEvents.userId, userId), older))
        .orderBy(desc(auditEvents.createdAt), desc(auditEvents.id))
        .limit(limit)
    },

    async prune (olderThan) {
      const deleted = await orm.delete(auditEvents).where(lt(auditEvents.createdAt, olderThan))
      return deleted.rowCount ?? 0
    }
  }
}
