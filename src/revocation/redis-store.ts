import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { RevocationStoreUnavailableError } from '../errors'
import type { RevocationEntry, RevocationLog, RevocationStats, RevocationStore } from './contract'
import { createReplica } from './replica'
import { commitWait } from './timing'

/** Entries written to Redis per round trip when rebuilding; the event loop runs between batches. */
const REBUILD_BATCH = 1000
/** How long a read that finds Redis unproven waits for the rebuild before answering 503. */
export const REBUILD_WAIT_MS = 500

/**
 * The marker's value: which Redis server process a complete rebuild was written to (its
 * run_id, new at every start and different on every replica) and the database log position
 * it covers. A server restarted from an older snapshot, or a replica promoted with lag,
 * still holds an old marker, but one that names another process: it proves nothing there.
 */
const markerValue = (server: string, position: number) => `${server} ${position}`
const markerServer = (value: string) => value.split(' ')[0]

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
  // Written after a complete rebuild (markerValue). Redis is believed only while it names the
  // server this connection reaches: absent (FLUSHALL, restart without persistence) or naming
  // another process (restart from a snapshot, failover), Redis may lack revocations.
  const marker = `${prefix}rebuilt`
  const sequenceKey = `${prefix}seq`
  const channel = `${prefix}revocations`
  const keyOf = (kind: RevocationEntry['kind'], id: string) => `${prefix}${kind}:${id}`
  // The run_id of the server this connection reaches; null from the moment it drops until
  // asked again (a reconnect may reach another process).
  let server: string | null = null
  let rebuilding: Promise<number> | null = null
  // Set when a write may not have reached Redis: the next read rebuilds first.
  let dirty = false
  const stats: RevocationStats = { rebuilds: 0, redisErrors: 0 }

  const publish = async (entries: RevocationEntry[]) => {
    const live = entries.filter((e) => e.until > Date.now())
    if (live.length === 0) return
    await redis.authRevoke(
      live.length + 1, sequenceKey, ...live.map((e) => keyOf(e.kind, e.id)),
      channel, JSON.stringify(live), ...live.map((e) => e.until)
    )
  }

  const identify = async () => {
    const info = await redis.info('server')
    const id = /^run_id:(\w+)/m.exec(info)?.[1]
    if (id === undefined) throw new Error('INFO server answered no run_id')
    server = id
    return id
  }
  /** Whether a marker read from Redis proves it holds everything (see markerValue). */
  const proven = (value: string | null) => value !== null && server !== null && markerServer(value) === server

  /**
   * Every live revocation in the database, written back into Redis (no message: replicas
   * reload on their own), then the marker naming the server written to. If the connection
   * reached another server meanwhile, some batches may have gone to the old one: again.
   */
  const rebuild = () => {
    rebuilding ??= (async () => {
      try {
        for (let attempt = 1; ; attempt++) {
          const target = await identify()
          const { entries, position } = await log.loadAll(Date.now())
          dirty = false
          for (let i = 0; i < entries.length; i += REBUILD_BATCH) {
            const pipeline = redis.pipeline()
            for (const e of entries.slice(i, i + REBUILD_BATCH)) pipeline.set(keyOf(e.kind, e.id), '1', 'PXAT', e.until)
            const results = await pipeline.exec()
            for (const [err] of results ?? []) if (err) throw err
            // Let requests run between batches: a large rebuild must not stall the instance.
            await new Promise((resolve) => setImmediate(resolve))
          }
          await redis.set(marker, markerValue(target, position))
          if (server === target) {
            stats.rebuilds++
            const event = { event: 'revocation_store.rebuilt', entries: entries.length, position }
            logger.info(event, 'revocation store rebuilt from the database')
            return entries.length
          }
          if (attempt === 3) throw new Error('the Redis server changed during every rebuild')
        }
      } catch (err) {
        dirty = true
        stats.redisErrors++
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
  /** The rebuild, waited for at most REBUILD_WAIT_MS: a read answers 503 rather than stall behind a large one. */
  const awaitRebuild = async () => {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new RevocationStoreUnavailableError()), REBUILD_WAIT_MS)
    })
    try {
      await Promise.race([rebuild(), late])
    } finally {
      clearTimeout(timer)
    }
  }

  const read = async (jti: string, sid: string) => {
    try {
      return await redis.mget(marker, keyOf('jti', jti), keyOf('sid', sid))
    } catch (err) {
      stats.redisErrors++
      throw new RevocationStoreUnavailableError(err)
    }
  }
  const readFromRedis = async (jti: string, sid: string) => {
    if (dirty) await awaitRebuild()
    // One MGET: the marker and the keys come from the same server at the same moment, and
    // `server` is the one that answered (it is cleared before a reconnect can answer).
    let [found, j, s] = await read(jti, sid)
    if (!proven(found)) {
      await awaitRebuild()
      ;[found, j, s] = await read(jti, sid)
      if (!proven(found)) throw new RevocationStoreUnavailableError()
    }
    return j !== null || s !== null
  }

  /**
   * The revocation counter, for the replica's reloads and heartbeats. Read with the marker
   * (one MGET: both from the same server at the same moment), so that every heartbeat also
   * notices a Redis that may lack revocations (FLUSHALL, a restart empty or from an older
   * snapshot, a failover) and has it rebuilt.
   */
  const readSequence = async () => {
    const [sequence, found] = await redis.mget(sequenceKey, marker)
    if (!proven(found)) rebuildInBackground()
    return Number(sequence ?? 0)
  }

  const replica = createReplica({
    subscriber: opts.subscriber,
    channel,
    readSequence,
    log,
    logger,
    republish: publish,
    stats
  })

  // After every reconnect: another instance may have revoked while we were cut off, and
  // the server may have come back empty or older, or be another one. Until the rebuild has
  // named the server in the marker, reads through Redis wait for it or answer 503.
  let connectedOnce = redis.status === 'ready'
  const onReady = () => {
    if (!connectedOnce) { connectedOnce = true; return }
    rebuildInBackground()
  }
  const onDropped = () => { server = null }
  redis.on('ready', onReady)
  redis.on('close', onDropped)
  redis.on('reconnecting', onDropped)

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
        stats.redisErrors++
        throw new RevocationStoreUnavailableError(err)
      }
      // A replica that has not seen the message by now is no longer trusted (timing.ts).
      await commitWait()
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
      const proofAgeMs = replica.proofAgeMs()
      return {
        kind: 'redis' as const,
        trusted: replica.trusted(),
        leaseAgeSeconds: Number.isFinite(proofAgeMs) ? proofAgeMs / 1000 : null,
        ...stats
      }
    },
    close () {
      redis.off('ready', onReady)
      redis.off('close', onDropped)
      redis.off('reconnecting', onDropped)
      replica.close()
    }
  }
}
