import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'

/** A revoked access token (`jti`) or session (`sid`), blocked until `until` (epoch ms). */
export interface RevocationEntry {
  kind: 'jti' | 'sid'
  id: string
  until: number
}

/**
 * The blocklist the hot path reads: a cache of the database's revocations. In-process
 * memory when REDIS_URL is unset, Redis (shared by every instance) when it is set.
 * Both throw RevocationStoreUnavailableError rather than answer when they cannot know.
 */
export interface RevocationStore {
  readonly kind: 'memory' | 'redis'
  /** One round trip for both ids; the memory store answers synchronously. */
  isRevoked (jti: string, sid: string): boolean | Promise<boolean>
  revoke (entries: RevocationEntry[]): Promise<void>
  /** Replaces nothing, adds everything: called at start and whenever Redis lost its data. */
  rebuild (): Promise<number>
  ping (): Promise<void>
  close (): void
}

export class RevocationStoreUnavailableError extends Error {
  readonly statusCode = 503
  constructor (cause?: unknown) {
    super('Revocation store unavailable', { cause })
    this.name = 'RevocationStoreUnavailableError'
  }
}

type Loader = (now: number) => Promise<RevocationEntry[]>

export function createMemoryStore (load: Loader, sweepEveryMs = 60_000): RevocationStore {
  const blocked = new Map<string, number>()
  const live = (key: string, now: number) => {
    const until = blocked.get(key)
    if (until === undefined) return false
    if (until > now) return true
    blocked.delete(key)
    return false
  }
  const add = (entries: RevocationEntry[], now: number) => {
    for (const e of entries) {
      if (e.until <= now) continue
      const key = `${e.kind}:${e.id}`
      if ((blocked.get(key) ?? 0) < e.until) blocked.set(key, e.until)
    }
  }
  // Expired entries are dropped as they are met and by this sweep, so the map never grows without bound.
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const [key, until] of blocked) if (until <= now) blocked.delete(key)
  }, sweepEveryMs).unref()

  return {
    kind: 'memory',
    isRevoked (jti, sid) {
      const now = Date.now()
      return live(`jti:${jti}`, now) || live(`sid:${sid}`, now)
    },
    async revoke (entries) { add(entries, Date.now()) },
    async rebuild () {
      const now = Date.now()
      const entries = await load(now)
      add(entries, now)
      return entries.length
    },
    async ping () {},
    close () { clearInterval(sweeper) }
  }
}

export function createRedisStore (redis: Redis, prefix: string, load: Loader, log: FastifyBaseLogger): RevocationStore {
  // Written after a complete rebuild; its absence means Redis lost our data (restart, FLUSHALL).
  const marker = `${prefix}rebuilt`
  const keyOf = (kind: RevocationEntry['kind'], id: string) => `${prefix}${kind}:${id}`
  let rebuilding: Promise<number> | null = null
  // Set when a write may not have reached Redis: the next read rebuilds first.
  let dirty = false

  const write = async (entries: RevocationEntry[], now: number) => {
    const pipeline = redis.pipeline()
    for (const e of entries) {
      if (e.until > now) pipeline.set(keyOf(e.kind, e.id), '1', 'PXAT', e.until)
    }
    const results = await pipeline.exec()
    for (const [err] of results ?? []) if (err) throw err
  }

  const rebuild = () => {
    rebuilding ??= (async () => {
      try {
        const now = Date.now()
        const entries = await load(now)
        dirty = false
        await write(entries, now)
        await redis.set(marker, String(now))
        log.info({ event: 'revocation_store.rebuilt', entries: entries.length }, 'revocation store rebuilt from the database')
        return entries.length
      } catch (err) {
        dirty = true
        throw new RevocationStoreUnavailableError(err)
      } finally {
        rebuilding = null
      }
    })()
    return rebuilding
  }

  const read = async (jti: string, sid: string) => {
    try {
      return await redis.mget(marker, keyOf('jti', jti), keyOf('sid', sid))
    } catch (err) {
      throw new RevocationStoreUnavailableError(err)
    }
  }

  // After every reconnect: another instance may have revoked while we were cut off, and
  // the server may have come back empty. Rebuilding is idempotent, so always do it.
  let connectedOnce = redis.status === 'ready'
  const onReady = () => {
    if (!connectedOnce) { connectedOnce = true; return }
    rebuild().catch((err) => log.warn({ err }, 'revocation store rebuild after reconnect failed'))
  }
  redis.on('ready', onReady)

  return {
    kind: 'redis',
    async isRevoked (jti, sid) {
      if (dirty) await rebuild()
      let [rebuilt, j, s] = await read(jti, sid)
      if (rebuilt === null) {
        await rebuild()
        ;[rebuilt, j, s] = await read(jti, sid)
        if (rebuilt === null) throw new RevocationStoreUnavailableError()
      }
      return j !== null || s !== null
    },
    async revoke (entries) {
      try {
        await write(entries, Date.now())
      } catch (err) {
        dirty = true
        throw new RevocationStoreUnavailableError(err)
      }
    },
    rebuild,
    async ping () {
      try {
        await redis.ping()
      } catch (err) {
        throw new RevocationStoreUnavailableError(err)
      }
    },
    close () { redis.off('ready', onReady) }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    revocationStore: RevocationStore
  }
}

export default fp(async function revocationStore (fastify) {
  const { accessTokenTtl, redisPrefix } = fastify.config
  // The database is the source of truth: revoked sessions whose access tokens may still be
  // alive (revoked within one access-token lifetime) and revoked single tokens not yet expired.
  const load: Loader = async (now) => {
    const ttlMs = accessTokenTtl * 1000
    const [revokedSessions, revokedTokens] = await Promise.all([
      fastify.sessionsRepository.revokedSince(now - ttlMs),
      fastify.revocationsRepository.active(now)
    ])
    return [
      ...revokedSessions.map((s): RevocationEntry => ({ kind: 'sid', id: s.id, until: s.revokedAt + ttlMs })),
      ...revokedTokens.map((t): RevocationEntry => ({ kind: 'jti', id: t.jti, until: t.expiresAt }))
    ]
  }

  const store = fastify.hasDecorator('redis')
    ? createRedisStore(fastify.redis, redisPrefix, load, fastify.log)
    : createMemoryStore(load)
  await store.rebuild()

  fastify.decorate('revocationStore', store)
  fastify.addHook('onClose', async () => { store.close() })
}, { name: 'revocation-store', dependencies: ['config', 'redis', 'sessions-repository', 'revocations-repository'] })
