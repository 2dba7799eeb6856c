import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { RevocationStoreUnavailableError } from '../errors'
import type { RevocationEntry, RevocationLog, RevocationStore } from './contract'
import { createReplica, LEASE_MS } from './replica'

/**
 * Writes the keys, numbers the revocation and publishes it, atomically: a message is
 * published if and only if its keys are written, and sequence numbers follow publish order.
 * KEYS: the sequence key, then one key per entry. ARGV: the channel, the message body, then
 * each entry's expiry (epoch ms).
 */
const REVOKE_SCRIPT = `
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], '1', 'PXAT', ARGV[i + 1])
end
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], seq .. ' ' .. ARGV[2])
return seq
`

type ScriptedRedis = Redis & { authRevoke (...args: Array<string | number>): Promise<number> }

export interface RedisStoreOptions {
  prefix: string
  log: RevocationLog
  logger: FastifyBaseLogger
  /** a second connection, for the replica's subscription */
  subscriber: Redis
}

/**
 * The blocklist in Redis, shared by every instance, with a local replica per instance
 * (replica.ts) that answers reads while it is trusted. Otherwise reads go to Redis: one
 * MGET, which fails closed (503) when Redis does not answer within the command timeout.
 */
export function createRedisStore (client: Redis, opts: RedisStoreOptions): RevocationStore {
  const { prefix, log, logger } = opts
  const redis = client as ScriptedRedis
  if (typeof redis.authRevoke !== 'function') redis.defineCommand('authRevoke', { lua: REVOKE_SCRIPT })
  // Written after a complete rebuild; its absence means Redis lost our data (restart, FLUSHALL).
  const marker = `${prefix}rebuilt`
  const sequenceKey = `${prefix}seq`
  const channel = `${prefix}revocations`
  const keyOf = (kind: RevocationEntry['kind'], id: string) => `${prefix}${kind}:${id}`
  let rebuilding: Promise<number> | null = null
  // Set when a write may not have reached Redis: the next read rebuilds first.
  let dirty = false
  let rebuilds = 0
  let errors = 0

  const publish = async (entries: RevocationEntry[]) => {
    const live = entries.filter((e) => e.until > Date.now())
    if (live.length === 0) return
    await redis.authRevoke(
      live.length + 1, sequenceKey, ...live.map((e) => keyOf(e.kind, e.id)),
      channel, JSON.stringify(live), ...live.map((e) => e.until)
    )
  }

  /** Every live revocation in the database, written back into Redis (no message: replicas reload on their own). */
  const rebuild = () => {
    rebuilding ??= (async () => {
      try {
        const now = Date.now()
        const { entries } = await log.loadAll(now)
        dirty = false
        for (let i = 0; i < entries.length; i += 1000) {
          const pipeline = redis.pipeline()
          for (const e of entries.slice(i, i + 1000)) pipeline.set(keyOf(e.kind, e.id), '1', 'PXAT', e.until)
          const results = await pipeline.exec()
          for (const [err] of results ?? []) if (err) throw err
        }
        await redis.set(marker, String(now))
        rebuilds++
        const event = { event: 'revocation_store.rebuilt', entries: entries.length }
        logger.info(event, 'revocation store rebuilt from the database')
        return entries.length
      } catch (err) {
        dirty = true
        errors++
        throw new RevocationStoreUnavailableError(err)
      } finally {
        rebuilding = null
      }
    })()
    return rebuilding
  }
  const rebuildInBackground = () => {
    rebuild().catch((err) => logger.warn({ msg: (err as Error).message }, 'revocation store rebuild failed'))
  }

  const read = async (jti: string, sid: string) => {
    try {
      return await redis.mget(marker, keyOf('jti', jti), keyOf('sid', sid))
    } catch (err) {
      errors++
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

  const replica = createReplica({
    redis,
    subscriber: opts.subscriber,
    channel,
    sequenceKey,
    markerKey: marker,
    log,
    logger,
    republish: publish,
    onRedisEmpty: rebuildInBackground
  })

  // After every reconnect: another instance may have revoked while we were cut off, and
  // the server may have come back empty. Rebuilding is idempotent, so always do it.
  let connectedOnce = redis.status === 'ready'
  const onReady = () => {
    if (!connectedOnce) { connectedOnce = true; return }
    rebuildInBackground()
  }
  redis.on('ready', onReady)

  return {
    kind: 'redis',
    isRevoked (jti, sid) {
      if (replica.trusted()) return replica.isRevoked(jti, sid)
      return readFromRedis(jti, sid)
    },
    async revoke (entries) {
      // This instance honours it at once, whatever happens next.
      replica.add(entries)
      try {
        await publish(entries)
      } catch (err) {
        // The database already holds it: Redis is rebuilt from there as soon as it answers,
        // and the other replicas find it when they reconcile with the database.
        dirty = true
        errors++
        throw new RevocationStoreUnavailableError(err)
      }
      // Commit-wait: a replica that has not seen the message by now is no longer trusted.
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS))
    },
    async rebuild () {
      const count = await rebuild()
      if (!(await replica.sync())) throw new RevocationStoreUnavailableError()
      return count
    },
    async ping () {
      try {
        await redis.ping()
      } catch (err) {
        throw new RevocationStoreUnavailableError(err)
      }
    },
    status () {
      const { reloads, proofAgeMs, failedBeats } = replica.state()
      return {
        kind: 'redis' as const,
        trusted: replica.trusted(),
        leaseAgeSeconds: Number.isFinite(proofAgeMs) ? proofAgeMs / 1000 : null,
        rebuilds: rebuilds + reloads,
        redisErrors: errors + failedBeats
      }
    },
    close () {
      redis.off('ready', onReady)
      replica.close()
    }
  }
}
