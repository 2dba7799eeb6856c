import fp from 'fastify-plugin'
import type { RevocationFeedRepository } from '../../src/feed/contract'
import { sqliteRevocationFeedRepository } from '../../src/db/sqlite/revocation-feed-repository'
import { postgresRevocationFeedRepository } from '../../src/db/postgres/revocation-feed-repository'

declare module 'fastify' {
  interface FastifyInstance {
    revocationFeedRepository: RevocationFeedRepository
  }
}

/** The dialect's reads for the revocation feed: src/db/<dialect>/revocation-feed-repository.ts. */
export default fp(async function revocationFeedRepository (fastify) {
  const { db } = fastify
  const repository = db.kind === 'postgres' ? postgresRevocationFeedRepository(db) : sqliteRevocationFeedRepository(db)
  fastify.decorate('revocationFeedRepository', repository)
}, { name: 'revocation-feed-repository', dependencies: ['db'] })
