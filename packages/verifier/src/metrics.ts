import type { Feed } from './feed'

/** The part of a prom-client Registry the plugin needs (prom-client stays an optional peer). */
export interface PromRegistry {
  registerMetric: (metric: any) => void
  getSingleMetric: (name: string) => unknown
}

interface CounterChild { inc: () => void }

export interface VerifierMetrics {
  outcome: {
    accepted: CounterChild
    unauthorized: CounterChild
    revoked: CounterChild
    staleRefused: CounterChild
    staleAccepted: CounterChild
  }
}

/**
 * Registers the plugin's series in the host's registry. prom-client is required here, from
 * the host's own install, only when a registry is given. Per-request counters are bound to
 * their label once, so the request path pays one increment.
 */
export function createMetrics (registry: PromRegistry, feed: Feed): VerifierMetrics {
  const prom = require('prom-client') as typeof import('prom-client')
  const registers = [registry as unknown as import('prom-client').Registry]
  const requests = new prom.Counter({
    name: 'verifier_requests_total',
    help: 'Requests seen by the token verifier, by outcome (stale_open: served while the blocklist was stale)',
    labelNames: ['outcome'] as const,
    registers
  })
  const gauges: Array<[string, string, () => number]> = [
    ['verifier_feed_connected', '1 while the revocation feed stream is open and delivering', () => feed.connected ? 1 : 0],
    ['verifier_feed_position', 'Highest revocation log position applied', () => feed.position ?? 0],
    ['verifier_blocklist_entries', 'Revoked jti and sid entries held locally', () => feed.blocklist.size],
    ['verifier_feed_last_event_age_seconds', 'Seconds since the last feed event or heartbeat (stale past staleAfter)',
      () => feed.lastEventAt === 0 ? Number.POSITIVE_INFINITY : (Date.now() - feed.lastEventAt) / 1000],
    ['verifier_feed_reconnects', 'Times the feed stream was given up and reopened', () => feed.reconnects]
  ]
  for (const [name, help, read] of gauges) {
    // Read at scrape time: nothing to keep in step on the request path.
    const gauge = new prom.Gauge({ name, help, registers, collect () { gauge.set(read()) } })
  }
  return {
    outcome: {
      accepted: requests.labels('accepted'),
      unauthorized: requests.labels('unauthorized'),
      revoked: requests.labels('revoked'),
      staleRefused: requests.labels('stale_closed'),
      staleAccepted: requests.labels('stale_open')
    }
  }
}
