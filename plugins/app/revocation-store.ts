import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { RevocationStoreUnavailableError } from '../../src/errors'

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

type Loader = (now: number) => Promise<RevocationEntry[]>

/** A pub/sub connection with the main one's settings, except that it may queue its SUBSCRIBE. */
function subscriberFor (redis: Redis): Redis {
  const subscriber = redis.duplicate({ enableOfflineQueue: true, lazyConnect: false })
  subscriber.on('error', () => {}) // the main connection already logs outages
  return subscriber
}

export function createMemoryStore (load: Loader, sweepEveryMs = 60_000): RevocationStore {
  // One map per kind, keyed by the bare id: no key string is built on the hot path.
  const blocked = { jti: new Map<string, number>(), sid: new Map<string, number>() }
  const live = (map: Map<string, number>, id: string, now: number) => {
    const until = map.get(id)
    if (until === undefined) return false
    if (until > now) return true
    map.delete(id)
    return false
  }
  const add = (entries: RevocationEntry[], now: number) => {
    for (const e of entries) {
      if (e.until <= now) continue
      const map = blocked[e.kind]
      if ((map.get(e.id) ?? 0) < e.until) map.set(e.id, e.until)
    }
  }
  // Expired entries are dropped as they are met and by this sweep, so the maps never grow without bound.
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const map of [blocked.jti, blocked.sid]) {
      for (const [id, until] of map) if (until <= now) map.delete(id)
    }
  }, sweepEveryMs).unref()

  return {
    kind: 'memory',
    isRevoked (jti, sid) {
      const now = Date.now()
      return live(blocked.jti, jti, now) || live(blocked.sid, sid, now)
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

export interface RedisStoreOptions {
  prefix: string
  load: Loader
  log: FastifyBaseLogger
  /**
   * A second connection for pub/sub. With it, every instance keeps a local replica of the
   * blocklist, kept current through a Redis channel, and answers reads from memory; without
   * it (or whenever the replica is not in sync) every read asks Redis.
   */
  subscriber?: Redis
}

export function createRedisStore (redis: Redis, opts: RedisStoreOptions): RevocationStore {
  const { prefix, load, log, subscriber } = opts
  // Written after a complete rebuild; its absence means Redis lost our data (restart, FLUSHALL).
  const marker = `${prefix}rebuilt`
  const channel = `${prefix}revocations`
  const keyOf = (kind: RevocationEntry['kind'], id: string) => `${prefix}${kind}:${id}`
  let rebuilding: Promise<number> | null = null
  // Set when a write may not have reached Redis: the next read rebuilds first.
  let dirty = false

  // Published with the keys, in one round trip, before the revoking request is answered:
  // by then the message is in every other instance's subscriber socket.
  const write = async (entries: RevocationEntry[], now: number, publish: boolean) => {
    const live = entries.filter((e) => e.until > now)
    if (live.length === 0) return
    const pipeline = redis.pipeline()
    for (const e of live) pipeline.set(keyOf(e.kind, e.id), '1', 'PXAT', e.until)
    if (publish && subscriber !== undefined) pipeline.publish(channel, JSON.stringify(live))
    const results = await pipeline.exec()
    for (const [err] of results ?? []) if (err) throw err
  }

  const rebuild = () => {
    rebuilding ??= (async () => {
      try {
        const now = Date.now()
        const entries = await load(now)
        dirty = false
        await write(entries, now, false)
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

  const readFromRedis = async (jti: string, sid: string) => {
    if (dirty) await rebuild()
    let [rebuilt, j, s] = await read(jti, sid)
    if (rebuilt === null) {
      await rebuild()
      ;[rebuilt, j, s] = await read(jti, sid)
      if (rebuilt === null) throw new RevocationStoreUnavailableError()
    }
    return j !== null || s !== null
  }

  // The local replica: trusted only while `inSync`, which needs a live subscription that
  // started before the replica was (re)loaded from the database. Any loss of the
  // subscription clears it, and reads go back to Redis (which fail closed when it is down).
  const replica = subscriber === undefined ? null : createMemoryStore(load)
  let inSync = false
  let syncing: Promise<void> | null = null
  // Bumped whenever the subscription may have missed a message; a sync that saw it change
  // while it ran does not count.
  let generation = 0
  const onMessage = (from: string, message: string) => {
    if (from !== channel || replica === null) return
    try {
      replica.revoke(JSON.parse(message) as RevocationEntry[]).catch(() => {}) // memory: applied synchronously, never rejects
    } catch (err) {
      inSync = false // a message we cannot read: stop trusting the replica until the next sync
      log.error({ err }, 'unreadable revocation message; reading from Redis until resynchronised')
    }
  }
  let loaded = 0 // entries of the last replica load, for rebuild()'s answer
  const sync = (): Promise<void> => {
    if (subscriber === undefined || replica === null) return Promise.resolve()
    syncing ??= (async () => {
      const started = generation
      try {
        await subscriber.subscribe(channel)
        loaded = await replica.rebuild() // everything revoked before the subscription started
        await rebuild() // and the keys, for readers without a replica
        inSync = subscriber.status === 'ready' && generation === started
      } catch (err) {
        log.warn({ msg: (err as Error).message }, 'revocation replica not in sync; reading from Redis')
      } finally {
        syncing = null
      }
      // The connection dropped and came back while we were loading: load again.
      if (!inSync && generation !== started && subscriber.status === 'ready') await sync()
    })()
    return syncing
  }
  const outOfSync = () => {
    inSync = false
    generation++
  }
  // A Redis that hangs without closing the connection must not leave the replica trusted:
  // a heartbeat on the subscription every second; no answer (1 s timeout) means out of sync.
  const heartbeat = subscriber === undefined
    ? null
    : setInterval(() => {
      if (!inSync) return
      subscriber.ping().catch(outOfSync)
    }, 1000).unref()
  if (subscriber !== undefined) {
    subscriber.on('message', onMessage)
    subscriber.on('close', outOfSync)
    subscriber.on('reconnecting', outOfSync)
    subscriber.on('ready', () => { sync().catch(() => {}) }) // sync() logs its own failures
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
    isRevoked (jti, sid) {
      if (inSync && replica !== null) return replica.isRevoked(jti, sid)
      return readFromRedis(jti, sid)
    },
    async revoke (entries) {
      try {
        await write(entries, Date.now(), true)
      } catch (err) {
        // The database already holds it: this instance honours it now, and rebuilds Redis
        // from the database as soon as it can.
        dirty = true
        if (replica !== null) await replica.revoke(entries)
        throw new RevocationStoreUnavailableError(err)
      }
      // This instance honours it at once, whatever its own copy of the message does.
      if (replica !== null) await replica.revoke(entries)
    },
    async rebuild () {
      if (subscriber === undefined) return await rebuild()
      await sync()
      if (!inSync) throw new RevocationStoreUnavailableError()
      return loaded
    },
    async ping () {
      try {
        await redis.ping()
      } catch (err) {
        throw new RevocationStoreUnavailableError(err)
      }
    },
    close () {
      redis.off('ready', onReady)
      replica?.close()
      if (heartbeat !== null) clearInterval(heartbeat)
      if (subscriber !== undefined) {
        subscriber.off('message', onMessage)
        subscriber.removeAllListeners('ready')
        subscriber.off('close', outOfSync)
        subscriber.off('reconnecting', outOfSync)
        subscriber.disconnect()
      }
    }
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
    ? createRedisStore(fastify.redis, { prefix: redisPrefix, load, log: fastify.log, subscriber: subscriberFor(fastify.redis) })
    : createMemoryStore(load)
  await store.rebuild()

  fastify.decorate('revocationStore', store)
  fastify.addHook('onClose', async () => { store.close() })
}, { name: 'revocation-store', dependencies: ['config', 'redis', 'sessions-repository', 'revocations-repository'] })
