import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type {
  AccountsRepository, AuditRepository, RevocationsRepository, SessionsRepository, UserProfile, UsersRepository
} from '../../src/db/repositories'
import type { RevocationFeedRepository } from '../../src/feed/contract'
import { sqliteAccountsRepository } from '../../src/db/sqlite/accounts-repository'
import { sqliteAuditRepository } from '../../src/db/sqlite/audit-repository'
import { sqliteRevocationFeedRepository } from '../../src/db/sqlite/revocation-feed-repository'
import { sqliteRevocationsRepository } from '../../src/db/sqlite/revocations-repository'
import { sqliteSessionsRepository } from '../../src/db/sqlite/sessions-repository'
import { sqliteUsersRepository } from '../../src/db/sqlite/users-repository'
import { postgresAccountsRepository } from '../../src/db/postgres/accounts-repository'
import { postgresAuditRepository } from '../../src/db/postgres/audit-repository'
import { postgresRevocationFeedRepository } from '../../src/db/postgres/revocation-feed-repository'
import { postgresRevocationsRepository } from '../../src/db/postgres/revocations-repository'
import { postgresSessionsRepository } from '../../src/db/postgres/sessions-repository'
import { postgresUsersRepository } from '../../src/db/postgres/users-repository'
import type { Db } from '../external/db'

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: UsersRepository
    sessionsRepository: SessionsRepository
    revocationsRepository: RevocationsRepository
    accountsRepository: AccountsRepository
    auditRepository: AuditRepository
    revocationFeedRepository: RevocationFeedRepository
  }
}

type Repositories = Pick<FastifyInstance, 'usersRepository' | 'sessionsRepository' | 'revocationsRepository' |
'accountsRepository' | 'auditRepository' | 'revocationFeedRepository'>

/** Every repository of one dialect (src/db/<dialect>/*-repository.ts): the only code that touches SQL. */
function forDialect (db: Db): Repositories {
  if (db.kind === 'postgres') {
    return {
      usersRepository: postgresUsersRepository(db),
      sessionsRepository: postgresSessionsRepository(db),
      revocationsRepository: postgresRevocationsRepository(db),
      accountsRepository: postgresAccountsRepository(db),
      auditRepository: postgresAuditRepository(db),
      revocationFeedRepository: postgresRevocationFeedRepository(db)
    }
  }
  return {
    usersRepository: sqliteUsersRepository(db),
    sessionsRepository: sqliteSessionsRepository(db),
    revocationsRepository: sqliteRevocationsRepository(db),
    accountsRepository: sqliteAccountsRepository(db),
    auditRepository: sqliteAuditRepository(db),
    revocationFeedRepository: sqliteRevocationFeedRepository(db)
  }
}

const PROFILE_CACHE_MS = 1000
const PROFILE_CACHE_MAX = 50_000

/** The users repository with a short profile cache in front (GET /users/me reads it per request). */
function withProfileCache (store: UsersRepository): UsersRepository {
  const profiles = new Map<string, { profile: UserProfile, until: number }>()
  const forget = (id: string) => { profiles.delete(id) }
  return {
    ...store,
    async findProfile (id) {
      const now = Date.now()
      const hit = profiles.get(id)
      if (hit !== undefined && hit.until > now) return hit.profile
      const profile = await store.findProfile(id)
      if (profile === undefined) {
        forget(id)
        return undefined
      }
      if (profiles.size >= PROFILE_CACHE_MAX) profiles.clear() // bounded, and cheap to refill
      profiles.set(id, { profile, until: now + PROFILE_CACHE_MS })
      return profile
    },
    // Changes made here are seen here at once.
    async rename (id, username, renewal) {
      forget(id)
      return await store.rename(id, username, renewal)
    },
    async changePassword (c) {
      forget(c.id)
      return await store.changePassword(c)
    },
    async delete (id, now) {
      forget(id)
      return await store.delete(id, now)
    }
  }
}

/**
 * The repositories of the dialect `config.database.kind` chose, picked once here; each is its
 * own decorator (fastify.usersRepository, fastify.sessionsRepository ...).
 */
export default fp(async function repositories (fastify) {
  const all = forDialect(fastify.db)
  fastify.decorate('usersRepository', withProfileCache(all.usersRepository))
  fastify.decorate('sessionsRepository', all.sessionsRepository)
  fastify.decorate('revocationsRepository', all.revocationsRepository)
  fastify.decorate('accountsRepository', all.accountsRepository)
  fastify.decorate('auditRepository', all.auditRepository)
  fastify.decorate('revocationFeedRepository', all.revocationFeedRepository)
}, { name: 'repositories', dependencies: ['db'] })
