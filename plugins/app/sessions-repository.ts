import fp from 'fastify-plugin'
import type { SessionsRepository } from '../../src/db/repositories'
import { sqliteSessionsRepository } from '../../src/db/sqlite/sessions-repository'
import { postgresSessionsRepository } from '../../src/db/postgres/sessions-repository'

export type { NewSession, Renewal, RotateResult, SessionRecord, SessionsRepository } from '../../src/db/repositories'

declare module 'fastify' {
  interface FastifyInstance {
    sessionsRepository: SessionsRepository
  }
}

/** The dialect's repository: src/db/<dialect>/sessions-repository.ts. */
export default fp(async function sessionsRepository (fastify) {
  const { db } = fastify
  const repository = db.kind === 'postgres' ? postgresSessionsRepository(db) : sqliteSessionsRepository(db)
  fastify.decorate('sessionsRepository', repository)
}, { name: 'sessions-repository', dependencies: ['db'] })
