/** The table the bench prints, and the shape of bench/results.json. */

export interface Row {
  name: string
  store: 'memory' | 'redis'
  rps: number
  p50_ms: number
  p99_ms: number
  errors: number
  non2xx: number
  /** the reference this row is divided by: 'ceiling', 'bcrypt', 'mixed-alone', or null for a reference */
  reference: string | null
  /** rps / the reference's rps (for ceiling and bcrypt: the mean of the runs just before and after) */
  ratio: number | null
  workers: number
  reference_rps: number | null
  requests: number
  connections: number
  /** the status every answer must have when it is not 2xx (reject: 401) */
  expected_status?: number
  unexpected: number
  [extra: string]: unknown
}

const fmt = (n: number | null | undefined, digits = 0) => n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits)

export function table (rows: Row[]): string {
  const header = ['scenario', 'store', 'workers', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'reference', 'ref req/s', 'ratio', 'CPU ms/req', 'CPU ratio']
  const lines = rows.map((r) => [
    r.name,
    r.store,
    String(r.workers),
    fmt(r.rps, r.rps < 100 ? 1 : 0),
    fmt(r.p50_ms, r.p50_ms < 10 ? 2 : 0),
    fmt(r.p99_ms, r.p99_ms < 10 ? 2 : 0),
    String(r.errors),
    r.expected_status !== undefined ? `${r.non2xx} (${r.expected_status} expected)` : String(r.non2xx),
    r.reference ?? '-',
    r.reference_rps === null ? '-' : fmt(r.reference_rps, r.reference_rps < 100 ? 1 : 0),
    fmt(r.ratio, 2),
    typeof r.cpu_ms_per_req === 'number' ? fmt(r.cpu_ms_per_req, r.cpu_ms_per_req < 1 ? 3 : 0) : '-',
    typeof r.cpu_ratio === 'number' ? fmt(r.cpu_ratio, 2) : '-'
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const left = new Set([0, 1, 8])
  const cell = (s: string, i: number) => left.has(i) ? s.padEnd(widths[i]) : s.padStart(widths[i])
  const out = [header.map(cell).join('  '), widths.map((w) => '-'.repeat(w)).join('  ')]
  for (const l of lines) out.push(l.map(cell).join('  '))
  return out.join('\n')
}
