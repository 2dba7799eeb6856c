/** One entry of the revocation feed: tokens with this `jti` (or `sid`) are revoked until `until` (epoch ms). */
export interface FeedEntry {
  kind: 'jti' | 'sid'
  id: string
  until: number
}

/**
 * The local copy of the service's revocations. Two Maps (id -> until) so that a lookup on
 * the request path is two synchronous `get`s, no allocation; an entry is forgotten once its
 * `until` has passed, because every token it covers has expired by then.
 */
export class Blocklist {
  private jti = new Map<string, number>()
  private sid = new Map<string, number>()

  get size (): number {
    return this.jti.size + this.sid.size
  }

  /** Replaces everything (a snapshot is the whole truth up to its position). */
  replace (entries: FeedEntry[], now = Date.now()): void {
    this.jti = new Map()
    this.sid = new Map()
    this.add(entries, now)
  }

  add (entries: FeedEntry[], now = Date.now()): void {
    for (const e of entries) {
      if (typeof e?.id !== 'string' || typeof e.until !== 'number' || e.until <= now) continue
      const map = e.kind === 'sid' ? this.sid : e.kind === 'jti' ? this.jti : null
      if (map === null) continue
      // The later `until` wins: an entry only ever extends a revocation.
      const prev = map.get(e.id)
      if (prev === undefined || prev < e.until) map.set(e.id, e.until)
    }
  }

  /** True when a token with this jti or sid is revoked. */
  revoked (jti: string, sid: string): boolean {
    return this.jti.has(jti) || this.sid.has(sid)
  }

  /** Drops entries past their `until`; returns how many went. */
  sweep (now = Date.now()): number {
    let dropped = 0
    for (const map of [this.jti, this.sid]) {
      for (const [id, until] of map) {
        if (until <= now) { map.delete(id); dropped++ }
      }
    }
    return dropped
  }
}
