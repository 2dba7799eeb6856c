import { leaseHolds } from './timing'

/**
 * The replica's state machine (replica.ts runs it against Redis; these transitions are pure
 * and tested without it, test/unit/replica-state.test.ts).
 *
 *   untrusted --reload starts--> syncing --reload done, nothing lost meanwhile--> trusted
 *       ^                           |                                               |
 *       +------ anything that may have lost a message (from any phase) -------------+
 *
 * - untrusted: memory may lack revocations; reads go to Redis. A reload is due as soon as
 *   the link is up.
 * - syncing: subscribed, loading the database; reads still go to Redis.
 * - trusted: memory holds every revocation published since the subscription began. Reads
 *   are answered from memory while the lease also holds (timing.ts): a heartbeat proof
 *   younger than LEASE_MS.
 */
export type Phase = 'untrusted' | 'syncing' | 'trusted'

export interface ReplicaState {
  readonly phase: Phase
  /**
   * Counts the losses. A heartbeat begun in an earlier epoch read Redis before the loss
   * and proves nothing after it, so its outcome is dropped.
   */
  readonly epoch: number
  /** performance.now() when the PING of the last good heartbeat was sent; -Infinity before one */
  readonly proofAt: number
  /** the highest revocation sequence number received */
  readonly lastSeq: number
  /** how far into the database's revocation log the replica has read; null before its first load */
  readonly position: number | null
}

export interface Next {
  state: ReplicaState
  /** start a reload now (one already under way is joined) */
  reload: boolean
  /** trust was lost: why (for the log) */
  lost?: string
}

export const initialState: ReplicaState = {
  phase: 'untrusted', epoch: 0, proofAt: -Infinity, lastSeq: 0, position: null
}

/** Whether a read may be answered from memory at `now` (performance.now()). */
export const trusted = (s: ReplicaState, now: number): boolean => s.phase === 'trusted' && leaseHolds(s.proofAt, now)

const stay = (state: ReplicaState): Next => ({ state, reload: false })

const lose = (s: ReplicaState, why: string, reload: boolean): Next => ({
  state: { ...s, phase: 'untrusted', epoch: s.epoch + 1 },
  reload,
  lost: s.phase === 'trusted' ? why : undefined
})

/** The subscriber connection closed or is reconnecting: the reload waits for it to be ready. */
export const connectionLost = (s: ReplicaState): Next => lose(s, 'connection lost', false)

/**
 * A reload begins. Sequence numbers are counted afresh: the reload's own read of Redis's
 * counter sets where the replica stands.
 */
export const reloadStarted = (s: ReplicaState): ReplicaState => ({ ...s, phase: 'syncing', lastSeq: 0 })

export interface Loaded {
  /** Redis's sequence counter, read once subscribed */
  sequence: number
  /** the database log position the load covers */
  position: number
}

/**
 * A reload ended: `loaded` is what it read (null when it failed), `ready` whether the
 * subscription is still up. It was subscribed before loading, so whatever was published
 * during it has arrived or is on its way; unless a loss came meanwhile, the replica is in sync.
 */
export function reloadEnded (s: ReplicaState, loaded: Loaded | null, ready: boolean): Next {
  const state = loaded === null
    ? s
    : { ...s, lastSeq: Math.max(s.lastSeq, loaded.sequence), position: Math.max(s.position ?? 0, loaded.position) }
  if (loaded !== null && s.phase === 'syncing' && ready) return stay({ ...state, phase: 'trusted' })
  // A loss during the reload (phase untrusted): what it loaded may already be incomplete.
  return { state: { ...state, phase: 'untrusted' }, reload: s.phase === 'untrusted' && ready }
}

/** A message arrived; `seq` is its sequence number (NaN when it carried none). */
export function messageReceived (s: ReplicaState, seq: number): Next {
  if (!Number.isSafeInteger(seq)) return lose(s, 'message without a sequence number', true)
  // Messages arrive in publish order, so a jump means one was missed. A number at or below
  // the last one is one that was in flight during a reload (a reset of the counter by
  // FLUSHALL is caught by the heartbeat).
  if (s.phase === 'trusted' && seq > s.lastSeq + 1) return lose(s, 'sequence gap', true)
  return stay(seq > s.lastSeq ? { ...s, lastSeq: seq } : s)
}

/** A message that could not be read: what it carried is unknown. */
export const messageUnreadable = (s: ReplicaState): Next => lose(s, 'unreadable message', true)

export interface Beat {
  /** the epoch when the heartbeat began */
  epoch: number
  /** lastSeq when it began: every message received by then was published before its read */
  received: number
  /** Redis's sequence counter, read before the PING was sent */
  sequence: number
  /** performance.now() just before the PING was sent */
  sentAt: number
}

/** A heartbeat's PONG came back. */
export function beat (s: ReplicaState, b: Beat): Next {
  if (b.epoch !== s.epoch) return stay(s)
  if (s.phase !== 'trusted') return { state: s, reload: s.phase === 'untrusted' }
  if (b.sequence < b.received) return lose(s, 'sequence reset', true)
  // Every message numbered up to `sequence` was published before the PING was sent.
  if (b.sequence > s.lastSeq) return lose(s, 'a message did not arrive', true)
  return stay({ ...s, proofAt: b.sentAt })
}

/** The database's revocation log was read up to `position`. */
export const reconciled = (s: ReplicaState, position: number): ReplicaState => ({ ...s, position })
