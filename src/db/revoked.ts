import type { RevocationEntry, Revoked } from '../revocation/contract'

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
