import fp from 'fastify-plugin'
import type { AccountsRepository } from '../../src/db/repositories'
import { sqliteAccountsRepository } from '../../src/db/sqlite/accounts-repository'
import { postgresAccountsRepository } from '../../src/db/postgres/accounts-repository'

export type { AccountRecord, AccountsRepository, MfaProof } from '../../src/db/repositories'

declare module 'fastify' {
  interface FastifyInstance {
    accountsRepository: AccountsRepository
  }
}

/** The dialect's repository: src/db/<dialect>/accounts-repository.ts (roles, disabling, TOTP, resets). */
export default fp(async function accountsRepository (fastify) {
  const { db } = fastify
  const repository = db.kind === 'postgres' ? postgresAccountsRepository(db) : sqliteAccountsRepository(db)
  fastify.decorate('accountsRepository', repository)
}, { name: 'accounts-repository', dependencies: ['db'] })
