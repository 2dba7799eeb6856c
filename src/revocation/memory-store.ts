import type { RevocationEntry, RevocationLog, RevocationStats, RevocationStore } from './contract'

/** The in-process blocklist: the embedded store, and each instance's replica of Redis's. */
export interface MemoryStore extends RevocationStore {
  isRevoked (jti: string, sid: string): boolean
  /** Adds entries; answers those it did not already hold (for as long). */
  add (entries: RevocationEntry[]): RevocationEntry[]
}

export function createMemoryStore (log: RevocationLog, sweepEveryMs = 60_000): MemoryStore {
  // One map per kind, keyed by the bare id: no key string is built on the hot path.
  const blocked = { jti: new Map<string, number>(), sid: new Map<string, number>() }
  const live = (map: Map<string, number>, id: string, now: number) => {
    const until = map.get(id)
    if (until === undefined) return false
    if (until > now) return true
    map.delete(id)
    return false
  }
  const add = (entries: RevocationEntry[]) => {
    const now = Date.now()
    const added: RevocationEntry[] = []
    for (const e of entries) {
      if (e.until <= now) continue
      const map = blocked[e.kind]
      if ((map.get(e.id) ?? 0) >= e.until) continue
      map.set(e.id, e.until)
      added.push(e)
    }
    return added
  }
  const stats: RevocationStats = { rebuilds: 0, redisErrors: 0 }
  // Expired entries are dropped as they are met and by this sweep, so the maps never grow without bound.
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const map of [blocked.jti, blocked.sid]) {
      for (const [id, until] of map) if (until <= now) map.delete(id)
    }
  }, sweepEveryMs).unref()

  return {
    kind: 'memory',
    isRevoked (jti, sid) {
      const now = Date.now()
      return live(blocked.jti, jti, now) || live(blocked.sid, sid, now)
    },
    add,
    // One process: holding it is the whole job.
    async revoke (entries) { add(entries) },
    async rebuild () {
      const { entries } = await log.loadAll(Date.now())
      add(entries)
      stats.rebuilds++
      return entries.length
    },
    async ping () {},
    status: () => ({ kind: 'memory', trusted: true, leaseAgeSeconds: null, ...stats }),
    close () { clearInterval(sweeper) }
  }
}
