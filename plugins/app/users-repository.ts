import fp from 'fastify-plugin'
import type { UserProfile, UsersRepository } from '../../src/db/repositories'
import { sqliteUsersRepository } from '../../src/db/sqlite/users-repository'
import { postgresUsersRepository } from '../../src/db/postgres/users-repository'

export type { PasswordChangeRefused, UserProfile, UserRecord, UsersRepository } from '../../src/db/repositories'

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: UsersRepository
  }
}

export const PROFILE_CACHE_MS = 1000
const PROFILE_CACHE_MAX = 50_000

/** The dialect's repository (src/db/<dialect>/users-repository.ts), with the profile cache in front. */
export default fp(async function usersRepository (fastify) {
  const { db } = fastify
  const store = db.kind === 'postgres' ? postgresUsersRepository(db) : sqliteUsersRepository(db)

  const profiles = new Map<string, { profile: UserProfile, until: number }>()
  const forget = (id: string) => { profiles.delete(id) }

  const repo: UsersRepository = {
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
  fastify.decorate('usersRepository', repo)
}, { name: 'users-repository', dependencies: ['db'] })
