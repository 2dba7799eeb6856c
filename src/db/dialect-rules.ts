import { and, lt, lte, or, type Column, type SQL } from 'drizzle-orm'
import type { RevocationEntry, Revoked } from '../revocation/contract'
import { usernameKey, type AccountRecord, type AuditCursor, type UserRecord } from './repositories'

// What both dialects' repositories share: rules and mappings written once, over plain rows
// (or any dialect's columns), so that src/db/sqlite and src/db/postgres differ only in SQL.

/** A session a revocation reads: its id and the expiry of its latest access token (epoch ms). */
export interface SessionUntil {
  id: string
  until: number
}

/** The blocklist entries of sessions: each blocks its whole session until its tokens expire. */
export function sessionEntries (sessions: SessionUntil[]): RevocationEntry[] {
  return sessions.map((s) => ({ kind: 'sid', id: s.id, until: s.until }))
}

/**
 * What a revocation of sessions answers, for either dialect: it counts the sessions revoked
 * now, and publishes those plus the ones revoked earlier whose tokens are still live, so that
 * repeating a revocation whose publish was lost reaches every instance. `revokedNow`: the
 * rows this transaction revoked; `revoked`: the scope's revoked rows whose tokens outlive
 * `now` (read in the same transaction, so they may include `revokedNow`).
 */
export function revocationOf (revokedNow: SessionUntil[], revoked: SessionUntil[], now: number): Revoked {
  const ids = new Set(revokedNow.map((s) => s.id))
  const earlier = revoked.filter((s) => s.until > now && !ids.has(s.id))
  return { entries: sessionEntries([...revokedNow, ...earlier]), count: revokedNow.length }
}

/** LIKE's wildcards (and its escape) in a username prefix, matched literally. */
export const likePrefix = (prefix: string) => `${usernameKey(prefix).replace(/[\\%_]/g, (c) => `\\${c}`)}%`

/** The roles column: names separated by spaces. */
export const toRoles = (roles: string) => roles.split(' ').filter(Boolean)

/** The columns of users an AccountRecord is read from. */
export interface AccountRow {
  id: string
  username: string
  usernameKey: string
  createdAt: number
  updatedAt: number
  roles: string
  disabledAt: number | null
  mfaEnabled: boolean
  lastLoginAt: number | null
}

export const toAccount = (r: AccountRow): AccountRecord => ({
  id: r.id,
  username: r.username,
  usernameKey: r.usernameKey,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
  roles: toRoles(r.roles),
  disabled: r.disabledAt !== null,
  mfaEnabled: r.mfaEnabled,
  lastLoginAt: r.lastLoginAt
})

/** The record of a user just registered (its row as inserted). */
export const newUserRecord = (id: string, username: string, passwordHash: string, now: number): UserRecord => ({
  id,
  username,
  passwordHash,
  credentialVersion: 0,
  createdAt: now,
  updatedAt: now,
  disabled: false,
  mfaEnabled: false
})

/** Audit events older than the page cursor (newest first, ties broken by id); none: from the newest. */
export function olderThan (createdAt: Column, id: Column, before: AuditCursor | undefined): SQL | undefined {
  if (before === undefined) return undefined
  // created_at <= c bounds the index range; the OR only sorts out the ties at c
  return and(lte(createdAt, before.createdAt), or(lt(createdAt, before.createdAt), lt(id, before.id)))
}
