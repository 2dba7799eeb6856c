import fp from 'fastify-plugin'
import type { RevocationsRepository } from '../../src/db/repositories'
import { sqliteRevocationsRepository } from '../../src/db/sqlite/revocations-repository'
import { postgresRevocationsRepository } from '../../src/db/postgres/revocations-repository'

export type { RevocationsRepository } from '../../src/db/repositories'

declare module 'fastify' {
  interface FastifyInstance {
    revocationsRepository: RevocationsRepository
  }
}

/** The dialect's repository: src/db/<dialect>/revocations-repository.ts. */
export default fp(async function revocationsRepository (fastify) {
  const { db } = fastify
  const repository = db.kind === 'postgres' ? postgresRevocationsRepository(db) : sqliteRevocationsRepository(db)
  fastify.decorate('revocationsRepository', repository)
}, { name: 'revocations-repository', dependencies: ['db'] })
