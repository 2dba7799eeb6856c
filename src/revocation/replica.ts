import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { RevocationEntry, RevocationLog, RevocationStats } from './contract'
import { createMemoryStore } from './memory-store'
import {
  beat, connectionLost, initialState, messageReceived, messageUnreadable, reconciled, reloadEnded, reloadStarted,
  trusted, type Loaded, type Next, type ReplicaState
} from './replica-state'
import { HEARTBEAT_MS, RECONCILE_MS } from './timing'

/**
 * A local replica of the Redis blocklist, so that protected reads cost no Redis round trip.
 *
 * A replica is a promise about the past: "I hold every revocation published before T".
 * T is made explicit with a heartbeat on the subscriber connection, and the replica is
 * trusted only while that proof is younger than the lease; a revoking instance waits the
 * lease out before it answers (timing.ts states the contract). So once a revocation is
 * answered, every instance either holds it or has stopped trusting its replica (and reads
 * Redis, or answers 503): a stalled link that never closes loses trust by itself, and
 * regains it by itself once PONGs come back. The phases (untrusted, syncing, trusted) and
 * every transition between them are in replica-state.ts; this file feeds them events.
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

export interface ReplicaOptions {
  /** a connection of its own, for the subscription and its heartbeat */
  subscriber: Redis
  channel: string
  /**
   * Redis's revocation sequence counter (the store also checks, in the same read, that Redis
   * may be believed, and starts its rebuild when not).
   */
  readSequence: () => Promise<number>
  log: RevocationLog
  logger: FastifyBaseLogger
  /** publishes entries found in the database that never arrived as messages */
  republish: (entries: RevocationEntry[]) => Promise<void>
  /** the store's counters: reloads count as rebuilds, failed heartbeats as Redis errors */
  stats: RevocationStats
}

export interface Replica {
  /** in sync, and a heartbeat proof younger than the lease */
  trusted (): boolean
  /** ms since the PING of the last good heartbeat was sent (Infinity before the first) */
  proofAgeMs (): number
  isRevoked (jti: string, sid: string): boolean
  add (entries: RevocationEntry[]): void
  /** (Re)subscribes and loads the database; resolves once the replica is synced, or not. */
  sync (): Promise<boolean>
  close (): void
}

export function createReplica (opts: ReplicaOptions): Replica {
  const { subscriber, channel, log, logger, stats } = opts
  const memory = createMemoryStore(log)
  let state: ReplicaState = initialState
  // Each kind of I/O runs one at a time: a reload in flight is joined, a beat or a
  // reconciliation still running skips the next tick.
  let reloading: Promise<boolean> | null = null
  let beating = false
  let reconciling = false

  /** Applies a transition: logs a loss of trust, and starts the reload it asks for. */
  const apply = (next: Next) => {
    state = next.state
    if (next.lost !== undefined) {
      const event = { event: 'revocation_replica.untrusted', why: next.lost }
      logger.warn(event, 'revocation replica out of sync; reading Redis until reloaded')
    }
    if (next.reload) sync().catch(() => {})
  }

  const reload = async () => {
    state = reloadStarted(state)
    let loaded: Loaded | null = null
    try {
      await subscriber.subscribe(channel)
      // Subscribed first: whatever is published from now on arrives; what was published
      // before is already in the database (committed before its publish).
      const sequence = await opts.readSequence()
      const found = await log.loadAll(Date.now())
      memory.add(found.entries)
      stats.rebuilds++
      loaded = { sequence, position: found.position }
    } catch (err) {
      logger.warn({ msg: (err as Error).message }, 'revocation replica reload failed; reading Redis')
    }
    return loaded
  }
  const sync = (): Promise<boolean> => {
    reloading ??= (async () => {
      const loaded = await reload()
      reloading = null
      apply(reloadEnded(state, loaded, subscriber.status === 'ready'))
      if (reloading !== null) return await reloading // a loss meanwhile: reloading again
      const synced = state.phase === 'trusted'
      const event = { event: 'revocation_replica.synced', position: state.position }
      if (synced) logger.info(event, 'revocation replica in sync')
      return synced
    })()
    return reloading
  }

  const onMessage = (from: string, message: string) => {
    if (from !== channel) return
    const space = message.indexOf(' ')
    let entries: RevocationEntry[]
    try {
      entries = JSON.parse(message.slice(space + 1)) as RevocationEntry[]
    } catch {
      return apply(messageUnreadable(state))
    }
    memory.add(entries)
    apply(messageReceived(state, Number(message.slice(0, space))))
  }

  const heartbeat = async () => {
    const { epoch, lastSeq: received } = state
    const sequence = await opts.readSequence()
    const sentAt = performance.now()
    await subscriber.ping()
    apply(beat(state, { epoch, received, sequence, sentAt }))
  }
  const heartbeats = setInterval(() => {
    if (beating || subscriber.status !== 'ready') return
    beating = true
    // a missed beat just lets the lease run out
    heartbeat().catch(() => { stats.redisErrors++ }).finally(() => { beating = false })
  }, HEARTBEAT_MS).unref()

  const reconcile = async (position: number) => {
    const found = await log.since(position, Date.now())
    state = reconciled(state, found.position)
    const missed = memory.add(found.entries)
    if (missed.length > 0) {
      logger.warn({ event: 'revocation_replica.repaired', entries: missed.length },
        'revocations found in the database that never arrived; publishing them again')
      await opts.republish(missed)
    }
  }
  const reconciler = setInterval(() => {
    // Before the first load, reading from position 0 would find the whole log "missed" and
    // publish it all again (with many live entries, one script long enough to time out every command).
    if (reconciling || state.position === null) return
    reconciling = true
    reconcile(state.position).catch(() => {}).finally(() => { reconciling = false })
  }, RECONCILE_MS).unref()

  const onLost = () => apply(connectionLost(state))
  const onReady = () => { sync().catch(() => {}) }
  subscriber.on('message', onMessage)
  subscriber.on('close', onLost)
  subscriber.on('reconnecting', onLost)
  subscriber.on('ready', onReady)

  return {
    trusted: () => trusted(state, performance.now()),
    proofAgeMs: () => performance.now() - state.proofAt,
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
