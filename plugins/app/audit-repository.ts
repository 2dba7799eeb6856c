import fp from 'fastify-plugin'
import type { AuditRepository } from '../../src/db/repositories'
import { sqliteAuditRepository } from '../../src/db/sqlite/audit-repository'
import { postgresAuditRepository } from '../../src/db/postgres/audit-repository'

export type { AuditCursor, AuditRecord, AuditRepository, NewAuditRecord } from '../../src/db/repositories'

declare module 'fastify' {
  interface FastifyInstance {
    auditRepository: AuditRepository
  }
}

/** The dialect's repository: src/db/<dialect>/audit-repository.ts. */
export default fp(async function auditRepository (fastify) {
  const { db } = fastify
  fastify.decorate('auditRepository', db.kind === 'postgres' ? postgresAuditRepository(db) : sqliteAuditRepository(db))
}, { name: 'audit-repository', dependencies: ['db'] })
