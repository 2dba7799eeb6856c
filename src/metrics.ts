import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The message a worker sends the cluster primary for the metrics of every worker (src/server.ts answers). */
export const METRICS_REQUEST = 'auth-service:metrics'

export type LoginOutcome = 'success' | 'bad_credentials' | 'rate_limited' | 'shed'
export type RejectReason = 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'revoked'
export type RevocationCause =
  'logout' | 'logout_all' | 'password_change' | 'account_deleted' | 'refresh_reuse' | 'user_revoked' | 'renewal'
export type RefreshOutcome = 'rotated' | 'reuse_detected' | 'invalid'

/** What the service reports to Prometheus (GET /metrics). Every name is documented in docs/operations.md. */
export interface ServiceMetrics {
  readonly registry: Registry
  /**
   * Gives a metric source (MetricSources) to the metrics read at scrape time: the plugin
   * that owns the state registers it when it loads. Until then those metrics report nothing
   * (the hashing queue depth: 0).
   */
  setSource<K extends keyof MetricSources> (name: K, read: MetricSources[K]): void
  readonly requestDuration: Histogram<'method' | 'route' | 'status_code'>
  readonly requests: Counter<'method' | 'route' | 'status_code'>
  readonly logins: Counter<'outcome'>
  readonly tokensRejected: Counter<'reason'>
  readonly revocations: Counter<'cause'>
  readonly refreshes: Counter<'outcome'>
  readonly hashingWait: Histogram
  readonly hashingShed: Counter
  readonly hashingDropped: Counter
  readonly databaseErrors: Counter
}

/** Read at scrape time: state that lives in other plugins (the hashing queue, the revocation store). */
export interface MetricSources {
  hashingQueueDepth: () => number
  revocationStore: () => {
    kind: 'memory' | 'redis'
    trusted: boolean
    leaseAgeSeconds: number | null
    rebuilds: number
    redisErrors: number
  }
}

/**
 * One registry per application instance. Counters are cheap to bump; the request histogram
 * keeps one child per route and status (see plugins/app/metrics.ts). With WORKERS=N each
 * metric says how the primary adds up the workers' values (`aggregator`).
 */
export function createMetrics (): ServiceMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const sources: Partial<MetricSources> = {}
  const store = () => sources.revocationStore?.()
  // Gauges and counters whose values live elsewhere: each reads its source at scrape time
  // (reset first: no source yet, no value). Only the registry holds them.
  const readAtScrape = [new Gauge({
    name: 'auth_revocation_replica_trusted',
    help: '1 while the revocation store answers from trusted memory (always 1 for the in-process store); ' +
      'with WORKERS=N, the lowest of the workers',
    registers: [],
    aggregator: 'min',
    collect () {
      this.reset()
      const status = store()
      if (status !== undefined) this.set(status.trusted ? 1 : 0)
    }
  }), new Gauge({
    name: 'auth_revocation_replica_lease_age_seconds',
    help: 'age of the last heartbeat proof of the Redis replica (0 with the in-process store); ' +
      'with WORKERS=N, the oldest',
    registers: [],
    aggregator: 'max',
    collect () {
      this.reset()
      const age = store()?.leaseAgeSeconds
      if (age !== undefined && age !== null) this.set(age)
    }
  }), new Gauge({
    name: 'auth_revocation_store_info',
    help: 'the kind of revocation store in use (label kind), always 1',
    labelNames: ['kind'],
    registers: [],
    aggregator: 'max',
    collect () {
      this.reset()
      const status = store()
      if (status !== undefined) this.set({ kind: status.kind }, 1)
    }
  }), new Counter({
    name: 'auth_revocation_store_rebuilds_total',
    help: 'times the revocation store was (re)loaded from the database',
    registers: [],
    collect () { this.reset(); this.inc(store()?.rebuilds ?? 0) }
  }), new Counter({
    name: 'auth_redis_errors_total',
    help: 'Redis commands of the revocation store that failed (outages, timeouts)',
    registers: [],
    collect () { this.reset(); this.inc(store()?.redisErrors ?? 0) }
  }), new Gauge({
    name: 'auth_password_hashing_queue_depth',
    help: 'password hashing jobs queued or running',
    registers: [],
    collect () { this.set(sources.hashingQueueDepth?.() ?? 0) }
  })]
  for (const metric of readAtScrape) registry.registerMetric(metric)

  return {
    registry,
    setSource (name, read) { sources[name] = read },
    requestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'time to answer a request, by route (its pattern) and status',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers
    }),
    requests: new Counter({
      name: 'http_requests_total',
      help: 'requests answered, by route (its pattern) and status',
      labelNames: ['method', 'route', 'status_code'],
      registers
    }),
    logins: new Counter({
      name: 'auth_logins_total',
      help: 'login attempts by outcome (every surface)',
      labelNames: ['outcome'],
      registers
    }),
    tokensRejected: new Counter({
      name: 'auth_access_tokens_rejected_total',
      help: 'access tokens refused, by reason',
      labelNames: ['reason'],
      registers
    }),
    revocations: new Counter({
      name: 'auth_revocations_total',
      help: 'sessions and access tokens revoked, by cause',
      labelNames: ['cause'],
      registers
    }),
    refreshes: new Counter({
      name: 'auth_refresh_total',
      help: 'refresh-token presentations by outcome',
      labelNames: ['outcome'],
      registers
    }),
    hashingWait: new Histogram({
      name: 'auth_password_hashing_seconds',
      help: 'time from queueing a password hash to its result (queue wait included)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8],
      registers
    }),
    hashingShed: new Counter({
      name: 'auth_password_hashing_shed_total',
      help: 'logins and registrations refused with 503 because hashing was saturated',
      registers
    }),
    hashingDropped: new Counter({
      name: 'auth_password_hashing_dropped_total',
      help: 'queued hashing jobs dropped because their client had gone',
      registers
    }),
    databaseErrors: new Counter({
      name: 'auth_database_errors_total',
      help: 'requests answered 503 because the database was unavailable',
      registers
    })
  }
}
