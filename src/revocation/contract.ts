/**
 * The revocation store: the blocklist every protected request reads.
 *
 * Invariants every implementation keeps (test/plugins/revocation-store.test.ts runs the
 * same contract suite against each):
 * 1. The database is the source of truth. Every revocation is committed there (its row in
 *    the revocation log, in the same transaction as the change) before `revoke()` is called,
 *    and `rebuild()` reloads everything still live from it. A store never forgets what the
 *    database holds: not after a restart, a Redis restart or a FLUSHALL.
 * 2. When `revoke()` resolves, every instance refuses the revoked token: the entries are in
 *    Redis, and every replica that is still trusted has them (see replica.ts). When it cannot
 *    promise that, it rejects with RevocationStoreUnavailableError (503) and the request may
 *    be repeated: revoking something already revoked publishes it again.
 * 3. `isRevoked()` never answers "not revoked" when it cannot know: it throws
 *    RevocationStoreUnavailableError instead (fail closed).
 * 4. Entries expire when the tokens they cover do (`until`), so nothing grows without bound.
 */

/** A revoked access token (`jti`) or session (`sid`), blocked until `until` (epoch ms). */
export interface RevocationEntry {
  kind: 'jti' | 'sid'
  id: string
  until: number
}

/**
 * What a revocation in the database answers: the entries to publish (those revoked now and
 * those revoked before whose tokens still live, so that a repeat repairs a lost publish)
 * and how many were revoked by this request.
 */
export interface Revoked {
  entries: RevocationEntry[]
  count: number
}

export interface RevocationStore {
  readonly kind: 'memory' | 'redis'
  /** Both ids in one look-up; answered synchronously whenever it is answered from memory. */
  isRevoked (jti: string, sid: string): boolean | Promise<boolean>
  /** Resolves once every instance refuses these tokens (invariant 2). */
  revoke (entries: RevocationEntry[]): Promise<void>
  /** Loads every live revocation from the database; answers how many. */
  rebuild (): Promise<number>
  ping (): Promise<void>
  /** For metrics and readiness. */
  status (): RevocationStoreStatus
  close (): void
}

/** A store's counters: one object, which the Redis store shares with its replica. */
export interface RevocationStats {
  /** loads from the database (start, reconnects, FLUSHALL, replica reloads) */
  rebuilds: number
  /** Redis commands that failed (heartbeats included) */
  redisErrors: number
}

export interface RevocationStoreStatus extends RevocationStats {
  kind: 'memory' | 'redis'
  /** reads are answered from memory that is known to be current (always, in-process) */
  trusted: boolean
  /** seconds since the replica's last heartbeat proof; null in-process */
  leaseAgeSeconds: number | null
}

/** The revocation log as the stores read it (the `revocationsRepository` of plugins/app/repositories.ts). */
export interface RevocationLog {
  /** Every entry still live at `now`, and the log position they cover. */
  loadAll (now: number): Promise<{ entries: RevocationEntry[], position: number }>
  /** Entries written after `position` and still live at `now`, and the new position. */
  since (position: number, now: number): Promise<{ entries: RevocationEntry[], position: number }>
}
