import { and, eq, gt, isNotNull, isNull, ne, sql, type SQL } from 'drizzle-orm'
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core'
import type { RevocationEntry, Revoked } from '../../revocation/contract'
import type { Renewal } from '../repositories'
import { revocationLog, revokedTokens, sessions } from './schema'

/** A database or a transaction: the helpers below run inside the caller's transaction. */

export type Writer = BaseSQLiteDatabase<'sync', any, any>

/** Records revocations in the log, in the caller's transaction (see revocationLog in schema.ts). */
export function appendToLog (tx: Writer, entries: RevocationEntry[], now: number): void {
  if (entries.length === 0) return
  tx.insert(revocationLog)
    .values(entries.map((e) => ({ kind: e.kind, targetId: e.id, until: e.until, createdAt: now })))
    .run()
}

/**
 * Revokes the user's live sessions (all, or all but one) and logs them, in the caller's
 * transaction. Answers the entries to publish: the sessions revoked now, and those already
 * revoked whose tokens are still alive, so that repeating a revocation whose publish was
 * lost reaches every instance.
 */
export function revokeSessionsOfUser (
  tx: Writer, userId: string, reason: string, now: number, exceptId?: string
): Revoked {
  const scope: SQL[] = [eq(sessions.userId, userId)]
  if (exceptId !== undefined) scope.push(ne(sessions.id, exceptId))
  const revoked = tx.update(sessions).set({ revokedAt: now, revokedReason: reason })
    .where(and(...scope, isNull(sessions.revokedAt)))
    .returning({ id: sessions.id, until: sessions.accessExpiresAt })
    .all() as Array<{ id: string, until: number }>
  appendToLog(tx, revoked.map((s): RevocationEntry => ({ kind: 'sid', id: s.id, until: s.until })), now)
  const all = tx.select({ id: sessions.id, until: sessions.accessExpiresAt }).from(sessions)
    .where(and(...scope, isNotNull(sessions.revokedAt), gt(sessions.accessExpiresAt, now)))
    .all() as Array<{ id: string, until: number }>
  const entries = all.map((s): RevocationEntry => ({ kind: 'sid', id: s.id, until: s.until }))
  return { entries, count: revoked.length }
}

/**
 * Consumes a token renewed on use (Renewal), in the caller's (immediate) transaction: the
 * entry to log and publish, or null when the session is not live or the token was consumed
 * already (then the caller must write nothing).
 */
export function consumeToken (tx: Writer, r: Renewal): RevocationEntry | null {
  const session = tx.select({ id: sessions.id }).from(sessions)
    .where(and(eq(sessions.id, r.sessionId), isNull(sessions.revokedAt), gt(sessions.expiresAt, r.now))).get()
  if (session === undefined) return null
  const consumed = tx.insert(revokedTokens)
    .values({ jti: r.jti, sessionId: r.sessionId, expiresAt: r.tokenExpiresAt, revokedAt: r.now })
    .onConflictDoNothing().run().changes > 0
  if (!consumed) return null
  tx.update(sessions).set({ accessExpiresAt: sql`max(${sessions.accessExpiresAt}, ${r.accessExpiresAt})` })
    .where(eq(sessions.id, r.sessionId)).run()
  return { kind: 'jti', id: r.jti, until: r.tokenExpiresAt }
}
