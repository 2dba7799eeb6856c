/**
 * The timing contract between a revoking instance and every other instance's replica
 * (replica.ts). Both halves live here because neither is safe without the other.
 *
 * The proof. A replica's heartbeat sends a PING on its subscriber connection; Redis answers
 * in order on that connection, so its PONG arrives after every message Redis published
 * before it saw the PING (and the replica adds a message to memory as it arrives). The
 * replica dates the proof by the moment it *sent* the PING, which is no later than the moment
 * Redis saw it.
 *
 * The lease. A replica answers reads from memory only while its last proof is younger than
 * LEASE_MS (`leaseHolds`, checked with a monotonic clock at every read, so a stalled event
 * loop or a link that stalls without closing cannot stretch it).
 *
 * The commit-wait. A revoking instance answers only LEASE_MS after Redis acknowledged its
 * publish (`commitWait`). A replica that has not received that message can hold no proof
 * from a PING that Redis saw after the publish, so its last proof was sent before the
 * acknowledgement, and its lease has run out by the time the revocation is answered: it
 * reads Redis (or answers 503) instead. Only durations are compared, on each side's own
 * monotonic clock, so clock offsets between machines do not matter.
 *
 * So: commit-wait >= lease, always. Lengthening the lease, or shortening the wait, breaks
 * "once answered, refused on every instance" (docs/api.md, "Immediacy, on every instance,
 * under faults").
 */

/**
 * How long a heartbeat proof lets a replica answer from memory, and how long every revoking
 * request waits before it answers. 200 ms: short enough to add to a logout, long enough for
 * several heartbeats to fail or come late (a busy machine) before reads fall back to Redis.
 */
export const LEASE_MS = 200
/** A quarter of the lease: three beats in a row may be lost or late before trust lapses. */
export const HEARTBEAT_MS = 50
/**
 * How often a replica reads the database's revocation log for what never arrived as a
 * message: the bound on how long a lost publish goes unrepaired, for one small read a second.
 */
export const RECONCILE_MS = 1000

/** Whether a proof whose PING was sent at `proofAt` still holds at `now` (performance.now()). */
export const leaseHolds = (proofAt: number, now: number): boolean => now - proofAt < LEASE_MS

/**
 * Resolves once every replica that has not received a message acknowledged before the call
 * has stopped trusting its memory (see above). Call it after Redis acknowledged the publish.
 */
export const commitWait = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, LEASE_MS))
