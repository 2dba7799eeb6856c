/**
 * One measurement with autocannon's programmatic API. Every connection gets its own list of
 * requests (rotated, so that connections never send the same token at the same moment);
 * autocannon cycles through it. Only responses that finish inside the measured window,
 * which starts after a warm-up, count: the JIT warming up and the pipeline filling do not
 * weigh on the numbers.
 */
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import { cpuSeconds } from './procs'

export type Req = autocannon.Request

export interface LoadSpec {
  url: string
  connections: number
  /** seconds before the window opens */
  warmup: number
  /** seconds measured */
  duration: number
  /** the requests of one connection (index 0..connections-1) */
  requests: (connection: number) => Req[]
  /** statuses the scenario expects; anything else is `unexpected` (default: 2xx) */
  expect?: (status: number) => boolean
  /** requests per second over all connections (autocannon's overallRate) */
  overallRate?: number
  /**
   * rps = connections / mean latency (Little's law) instead of a count: for bcrypt-bound
   * scenarios, whose few completions arrive in waves of four (one per threadpool thread).
   */
  littlesLaw?: boolean
  /** processes whose CPU time (user + system) over the window is divided by the requests */
  cpuPids?: () => number[]
}

export interface LoadResult {
  rps: number
  rps_counted: number
  p50_ms: number
  p99_ms: number
  mean_ms: number
  requests: number
  errors: number
  non2xx: number
  unexpected: number
  statuses: Record<string, number>
  error_messages: string[]
  /** CPU milliseconds the measured processes spent per request in the window (null: not measured) */
  cpu_ms_per_req: number | null
}

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
}

const is2xx = (status: number) => status >= 200 && status < 300

export async function load (spec: LoadSpec): Promise<LoadResult> {
  const expect = spec.expect ?? is2xx
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  let non2xx = 0
  let unexpected = 0
  let errors = 0
  const errorMessages = new Set<string>()
  let nextConnection = 0

  const t0 = performance.now()
  const windowStart = t0 + spec.warmup * 1000
  const windowEnd = windowStart + spec.duration * 1000

  let finish!: (err: Error | null) => void
  const finished = new Promise<void>((resolve, reject) => { finish = (err) => err ? reject(err) : resolve() })
  // CPU time of the measured processes at the window's edges: noise from other processes
  // on the machine steals wall time from a run, much less its CPU time per request.
  const cpuAt = () => (spec.cpuPids?.() ?? []).reduce((a, pid) => a + (cpuSeconds(pid) ?? 0), 0)
  let cpuStart = 0
  let cpuEnd = 0
  const cpuTimers = spec.cpuPids
    ? [setTimeout(() => { cpuStart = cpuAt() }, windowStart - performance.now()), setTimeout(() => { cpuEnd = cpuAt() }, windowEnd - performance.now())]
    : []
  const instance = autocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    duration: spec.warmup + spec.duration + 0.05,
    sampleInt: 100, // autocannon stops at its next sample tick: keep the tail short
    timeout: 10,
    overallRate: spec.overallRate,
    requests: spec.requests(0).slice(0, 1),
    setupClient (client) {
      client.setRequests(spec.requests(nextConnection++))
    }
  }, (err) => finish(err ?? null))
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    // Statuses count wherever they happen (warm-up included); timings only inside the window.
    if (!expect(statusCode)) unexpected++
    if (!is2xx(statusCode)) non2xx++
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1
    const now = performance.now()
    if (now >= windowStart && now <= windowEnd) latencies.push(responseTime)
  })
  // Errors (connection errors, timeouts) count wherever they happen, warm-up included.
  instance.on('reqError', (err: Error) => {
    errors++
    if (errorMessages.size < 5) errorMessages.add(err.message)
  })
  await finished
  for (const t of cpuTimers) clearTimeout(t)

  latencies.sort((a, b) => a - b)
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)
  const counted = latencies.length / spec.duration
  const rps = spec.littlesLaw ? (latencies.length === 0 ? 0 : spec.connections / (mean / 1000)) : counted
  return {
    rps,
    rps_counted: counted,
    p50_ms: percentile(latencies, 0.5),
    p99_ms: percentile(latencies, 0.99),
    mean_ms: mean,
    requests: latencies.length,
    errors,
    non2xx,
    unexpected,
    statuses,
    error_messages: [...errorMessages],
    cpu_ms_per_req: spec.cpuPids && rps > 0 && cpuEnd > 0 ? ((cpuEnd - cpuStart) * 1000) / (rps * spec.duration) : null
  }
}

/** Rotates a list so that connection i starts at its own offset. */
export function rotate<T> (list: T[], connection: number, connections: number): T[] {
  if (list.length === 0) return list
  const offset = Math.floor((list.length * connection) / Math.max(1, connections)) % list.length
  return [...list.slice(offset), ...list.slice(0, offset)]
}
