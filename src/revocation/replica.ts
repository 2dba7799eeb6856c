import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { RevocationEntry, RevocationLog } from './contract'
import { createMemoryStore } from './memory-store'

/**
 * A local replica of the Redis blocklist, so that protected reads cost no Redis round trip.
 *
 * A replica is a promise about the past: "I hold every revocation published before T".
 * T is made explicit with a heartbeat on the subscriber connection: a PONG proves that
 * every message Redis published before it saw the PING has arrived (one connection, in
 * order). The replica is trusted only while such a proof is younger than LEASE_MS, and a
 * revoking instance waits LEASE_MS after Redis acknowledged its publish before it answers
 * (redis-store.ts). So once a revocation is answered, every instance either holds it or
 * has stopped trusting its replica (and reads Redis, or answers 503): a stalled link that
 * never closes loses trust by itself, and regains it by itself once PONGs come back.
 *
 * Messages can still be lost (a reconnect, a revoking instance that died between its
 * commit and its publish). Three repairs, each cheap:
 * - every message carries Redis's revocation sequence number; a gap, a reset (FLUSHALL)
 *   or a heartbeat that finds Redis ahead of what arrived makes the replica reload;
 * - a reload subscribes first, then loads the database, so nothing falls in between;
 * - every RECONCILE_MS the replica reads the database's revocation log after the last
 *   position it saw; anything it did not hold was lost on the way, and is published again
 *   (which also writes it back into Redis for instances that read Redis directly).
 */
export const LEASE_MS = 200
export const HEARTBEAT_MS = 50
export const RECONCILE_MS = 1000

export interface ReplicaOptions {
  /** the main connection (commands) */
  redis: Redis
  /** a second connection, for the subscription and its heartbeat */
  subscriber: Redis
  channel: string
  sequenceKey: string
  log: RevocationLog
  logger: FastifyBaseLogger
  /** publishes entries found in the database that never arrived as messages */
  republish: (entries: RevocationEntry[]) => Promise<void>
  /** the key of the store's rebuild marker */
  markerKey: string
  /** whether the marker's value proves Redis holds everything (redis-store.ts, markerValue) */
  markerProves: (value: string | null) => boolean
  /** Redis may lack revocations (FLUSHALL, a restart empty or from an older snapshot, a failover): rebuild it */
  onRedisBehind: () => void
}

export interface Replica {
  /** synced, and a heartbeat proof younger than the lease */
  trusted (): boolean
  /** for metrics: reloads so far, and the age of the last proof (ms; Infinity before the first) */
  state (): { reloads: number, proofAgeMs: number, failedBeats: number }
  isRevoked (jti: string, sid: string): boolean
  add (entries: RevocationEntry[]): void
  /** (Re)subscribes and loads the database; resolves once the replica is synced, or not. */
  sync (): Promise<boolean>
  close (): void
}

export function createReplica (opts: ReplicaOptions): Replica {
  const { redis, subscriber, channel, sequenceKey, markerKey, log, logger } = opts
  const memory = createMemoryStore(log)
  let synced = false
  let proofAt = -Infinity // performance.now() when the PING of the last good heartbeat was sent
  let lastSeq = 0 // the highest sequence number received
  let position = 0 // how far into the database's revocation log we have read
  let generation = 0 // bumped on every event that may have lost a message
  let syncing: Promise<boolean> | null = null
  let beating = false
  let reconciling = false
  let reloads = 0
  let failedBeats = 0

  const lose = (why: string) => {
    if (synced) {
      const event = { event: 'revocation_replica.untrusted', why }
      logger.warn(event, 'revocation replica out of sync; reading Redis until reloaded')
    }
    synced = false
    generation++
  }

  const sync = (): Promise<boolean> => {
    syncing ??= (async () => {
      const started = generation
      try {
        await subscriber.subscribe(channel)
        // Subscribed first: whatever is published from now on arrives; what was published
        // before is already in the database (committed before its publish).
        lastSeq = 0
        const current = Number(await redis.get(sequenceKey) ?? 0)
        const loaded = await log.loadAll(Date.now())
        memory.add(loaded.entries)
        reloads++
        position = Math.max(position, loaded.position)
        lastSeq = Math.max(lastSeq, current)
        synced = generation === started && subscriber.status === 'ready'
      } catch (err) {
        logger.warn({ msg: (err as Error).message }, 'revocation replica reload failed; reading Redis')
      } finally {
        syncing = null
      }
      if (!synced && generation !== started && subscriber.status === 'ready') return await sync()
      if (synced) logger.info({ event: 'revocation_replica.synced', position }, 'revocation replica in sync')
      return synced
    })()
    return syncing
  }
  const resync = (why: string) => {
    lose(why)
    sync().catch(() => {})
  }

  const onMessage = (from: string, message: string) => {
    if (from !== channel) return
    const space = message.indexOf(' ')
    const seq = Number(message.slice(0, space))
    let entries: RevocationEntry[]
    try {
      entries = JSON.parse(message.slice(space + 1)) as RevocationEntry[]
    } catch {
      return resync('unreadable message')
    }
    memory.add(entries)
    if (!Number.isSafeInteger(seq)) return resync('message without a sequence number')
    // Messages arrive in publish order, so a jump means one was missed. A number at or
    // below the last one is one that was in flight during a reload (a reset of the counter
    // by FLUSHALL is caught by the heartbeat).
    if (synced && seq > lastSeq + 1) return resync('sequence gap')
    if (seq > lastSeq) lastSeq = seq
  }

  const heartbeat = async () => {
    const started = generation
    // Every message received so far was published before this read: none is numbered above it.
    const received = lastSeq
    // Two GETs (one round trip with auto-pipelining), not an MGET: an MGET is the read a
    // replica that is not trusted sends per request, and tests count those.
    const [seq, marker] = await Promise.all([redis.get(sequenceKey), redis.get(markerKey)])
    if (!opts.markerProves(marker)) opts.onRedisBehind()
    const current = Number(seq ?? 0)
    const sentAt = performance.now()
    await subscriber.ping()
    if (generation !== started) return
    if (!synced) {
      if (syncing === null) sync().catch(() => {})
      return
    }
    if (current < received) return resync('sequence reset')
    // Every message numbered up to `current` was published before the PING was sent.
    if (current > lastSeq) return resync('a message did not arrive')
    proofAt = sentAt
  }
  const heartbeats = setInterval(() => {
    if (beating || subscriber.status !== 'ready') return
    beating = true
    // a missed beat just lets the lease run out
    heartbeat().catch(() => { failedBeats++ }).finally(() => { beating = false })
  }, HEARTBEAT_MS).unref()

  const reconcile = async () => {
    const found = await log.since(position, Date.now())
    position = found.position
    const missed = memory.add(found.entries)
    if (missed.length > 0) {
      logger.warn({ event: 'revocation_replica.repaired', entries: missed.length },
        'revocations found in the database that never arrived; publishing them again')
      await opts.republish(missed)
    }
  }
  const reconciler = setInterval(() => {
    // Before the first load, position 0 would find the whole log "missed" and publish it all
    // again (with many live entries, one script long enough to time out every command).
    if (reconciling || reloads === 0) return
    reconciling = true
    reconcile().catch(() => {}).finally(() => { reconciling = false })
  }, RECONCILE_MS).unref()

  const onLost = () => lose('connection lost')
  const onReady = () => { sync().catch(() => {}) }
  subscriber.on('message', onMessage)
  subscriber.on('close', onLost)
  subscriber.on('reconnecting', onLost)
  subscriber.on('ready', onReady)

  return {
    trusted: () => synced && performance.now() - proofAt < LEASE_MS,
    state: () => ({ reloads, proofAgeMs: performance.now() - proofAt, failedBeats }),
    isRevoked: (jti, sid) => memory.isRevoked(jti, sid),
    add (entries) { memory.add(entries) },
    sync,
    close () {
      clearInterval(heartbeats)
      clearInterval(reconciler)
      memory.close()
      subscriber.off('message', onMessage)
      subscriber.off('close', onLost)
      subscriber.off('reconnecting', onLost)
      subscriber.off('ready', onReady)
      subscriber.disconnect()
    }
  }
}
