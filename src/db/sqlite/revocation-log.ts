import { and, eq, gt, isNotNull, isNull, ne, sql, type SQL } from 'drizzle-orm'
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core'
import type { RevocationEntry, Revoked } from '../../revocation/contract'
import type { Renewal } from '../repositories'
import { revocationOf, sessionEntries, type SessionUntil } from '../dialect-rules'
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
 * Revokes the live sessions of `scope` and logs them, in the caller's transaction. Answers
 * as src/db/dialect-rules.ts says (revocationOf).
 */
export function revokeSessions (tx: Writer, scope: SQL[], reason: string, now: number): Revoked {
  const revokedNow = tx.update(sessions).set({ revokedAt: now, revokedReason: reason })
    .where(and(...scope, isNull(sessions.revokedAt)))
    .returning({ id: sessions.id, until: sessions.accessExpiresAt })
    .all() as SessionUntil[]
  appendToLog(tx, sessionEntries(revokedNow), now)
  const revoked = tx.select({ id: sessions.id, until: sessions.accessExpiresAt }).from(sessions)
    .where(and(...scope, isNotNull(sessions.revokedAt), gt(sessions.accessExpiresAt, now)))
    .all() as SessionUntil[]
  return revocationOf(revokedNow, revoked, now)
}

/** Revokes the user's live sessions (all, or all but one): revokeSessions. */
export function revokeSessionsOfUser (
  tx: Writer, userId: string, reason: string, now: number, exceptId?: string
): Revoked {
  const scope: SQL[] = [eq(sessions.userId, userId)]
  if (exceptId !== undefined) scope.push(ne(sessions.id, exceptId))
  return revokeSessions(tx, scope, reason, now)
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
