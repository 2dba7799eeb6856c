import { and, eq, gt, isNotNull, isNull, ne, sql, type SQL } from 'drizzle-orm'
import type { RevocationEntry, Revoked } from '../../revocation/contract'
import type { Renewal } from '../repositories'
import { revocationOf, sessionEntries } from '../dialect-rules'
import { LOCKS, type PgOrm } from './client'
import { revocationLog, revokedTokens, sessions } from './schema'

/**
 * Records revocations in the log, in the caller's transaction (see revocationLog in
 * ../sqlite/schema.ts). Call it last, just before the commit.
 *
 * Replicas read the rows after the last `seq` they saw, so a row must never become visible
 * after a row with a higher `seq`. An identity column does not promise that: `seq` is drawn
 * at INSERT, and two transactions may commit in the other order; the reader would then move
 * past the earlier row before it committed and never read it. So every appending
 * transaction first takes one transaction-level advisory lock: appends run one at a time,
 * each from its INSERT to its COMMIT (the lock is released after the commit is visible), and
 * `seq` order is commit order. Taking it last keeps the section short and deadlock-free
 * (nothing waits for a row lock while holding it).
 */
export async function appendToLog (tx: PgOrm, entries: RevocationEntry[], now: number): Promise<void> {
  if (entries.length === 0) return
  await tx.execute(sql`SELECT pg_advisory_xact_lock(${LOCKS.REVOCATION_LOG})`)
  await tx.insert(revocationLog)
    .values(entries.map((e) => ({ kind: e.kind, targetId: e.id, until: e.until, createdAt: now })))
}

/**
 * Revokes the live sessions of `scope` and logs them (appendToLog, last), in the caller's
 * transaction. The UPDATE's condition is re-checked after any wait for a row: one
 * revocation wins each session. Answers as src/db/dialect-rules.ts says (revocationOf).
 */
export async function revokeSessions (tx: PgOrm, scope: SQL[], reason: string, now: number): Promise<Revoked> {
  const revokedNow = await tx.update(sessions).set({ revokedAt: now, revokedReason: reason })
    .where(and(...scope, isNull(sessions.revokedAt)))
    .returning({ id: sessions.id, until: sessions.accessExpiresAt })
  const revoked = await tx.select({ id: sessions.id, until: sessions.accessExpiresAt }).from(sessions)
    .where(and(...scope, isNotNull(sessions.revokedAt), gt(sessions.accessExpiresAt, now)))
  await appendToLog(tx, sessionEntries(revokedNow), now)
  return revocationOf(revokedNow, revoked, now)
}

/**
 * Revokes the user's live sessions (all, or all but one): revokeSessions, in a transaction
 * that must hold the user's row lock (so that no login adds a session meanwhile, and two of
 * these never update the same rows in different orders).
 */
export async function revokeSessionsOfUser (
  tx: PgOrm, userId: string, reason: string, now: number, exceptId?: string
): Promise<Revoked> {
  const scope: SQL[] = [eq(sessions.userId, userId)]
  if (exceptId !== undefined) scope.push(ne(sessions.id, exceptId))
  return await revokeSessions(tx, scope, reason, now)
}

/**
 * Consumes a token renewed on use (Renewal), in the caller's transaction: the entry to log
 * (with appendToLog, last) and publish, or null when the session is not live or the token
 * was consumed already (then the caller must write nothing). Locks the session row as the
 * UPDATE below will (FOR NO KEY UPDATE, not FOR SHARE: two renewals holding it shared would
 * deadlock upgrading it): renewals and revocations of one session take turns.
 */
export async function consumeToken (tx: PgOrm, r: Renewal): Promise<RevocationEntry | null> {
  const [session] = await tx.select({ id: sessions.id }).from(sessions)
    .where(and(eq(sessions.id, r.sessionId), isNull(sessions.revokedAt), gt(sessions.expiresAt, r.now)))
    .for('no key update')
  if (session === undefined) return null
  // The primary key on jti consumes the token once, across instances.
  const consumed = await tx.insert(revokedTokens)
    .values({ jti: r.jti, sessionId: r.sessionId, expiresAt: r.tokenExpiresAt, revokedAt: r.now })
    .onConflictDoNothing().returning({ jti: revokedTokens.jti })
  if (consumed.length === 0) return null
  await tx.update(sessions)
    .set({ accessExpiresAt: sql`greatest(${sessions.accessExpiresAt}, ${r.accessExpiresAt})` })
    .where(eq(sessions.id, r.sessionId))
  return { kind: 'jti', id: r.jti, until: r.tokenExpiresAt }
}
