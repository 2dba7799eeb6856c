/** The table the bench prints, and the shape of bench/results.json. */

export type DbKind = 'sqlite' | 'postgres'

export interface Row {
  name: string
  /** the service's database; absent in runs saved before --db existed, which were all SQLite */
  db?: DbKind
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

/** A row's database: rows of runs saved before --db existed carry none, and were SQLite. */
export const dbOf = (r: { db?: unknown }): DbKind => r.db === 'postgres' ? 'postgres' : 'sqlite'

const fmt = (n: number | null | undefined, digits = 0) => n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits)

export function table (rows: Row[]): string {
  const header = ['scenario', 'db', 'store', 'workers', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'reference', 'ref req/s', 'ratio', 'CPU ms/req', 'CPU ratio']
  const lines = rows.map((r) => [
    r.name,
    dbOf(r),
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
  const left = new Set([0, 1, 2, 9])
  const cell = (s: string, i: number) => left.has(i) ? s.padEnd(widths[i]) : s.padStart(widths[i])
  const out = [header.map(cell).join('  '), widths.map((w) => '-'.repeat(w)).join('  ')]
  for (const l of lines) out.push(l.map(cell).join('  '))
  return out.join('\n')
}

export interface MemoryEntry {
  db?: DbKind
  store: string
  workers: number
  rss_after_run_mb: number
  rss_after_repeat_mb?: number
  growth_mb?: number
  per_process: Array<{ pid: number, rss_mb?: number | null, after_repeat_mb?: number | null }>
  [extra: string]: unknown
}

/** What a run writes (bench/.tmp/results.json, or bench/results.json with --save). */
export interface Results {
  machine: { node: string, cpus: number, quick: boolean, commit: string | null, started_at: string, elapsed_s: number, [extra: string]: unknown }
  scenarios: Row[]
  unavailable: Array<{ name: string, db?: DbKind, store: string, reason: string }>
  memory: MemoryEntry[]
  targets: Array<{ target: string, value: string, met: boolean | null }>
  failures: string[]
  /**
   * `npm run bench -- --alg X --save`: `me` and `reject` with tokens signed by X, each from a
   * run of its own (its machine says which), kept by later full runs
   */
  algorithms?: Partial<Record<'EdDSA' | 'ES256' | 'RS256', AlgorithmRun>>
}

export interface AlgorithmRun {
  machine: Results['machine']
  scenarios: Row[]
}

/** The table, then what is unavailable, RSS and the mixed scenario: what a run prints. */
export function summary (results: Pick<Results, 'scenarios' | 'unavailable' | 'memory'>): string {
  const out: string[] = [table(results.scenarios)]
  for (const u of results.unavailable) out.push(`unavailable: ${u.name} (${dbOf(u)}, ${u.store}): ${u.reason}`)
  for (const m of results.memory) {
    out.push(`RSS ${dbOf(m)} ${m.store}, WORKERS=${m.workers}: ${m.rss_after_run_mb} MB after the run` +
      (m.rss_after_repeat_mb !== undefined ? `, ${m.rss_after_repeat_mb} MB after a repeated me round (${(m.growth_mb as number) >= 0 ? '+' : ''}${m.growth_mb} MB)` : '') +
      (m.per_process.length > 1 ? ` [${m.per_process.map((p) => `${p.pid}: ${(p.rss_mb ?? p.after_repeat_mb ?? 0).toFixed(1)}`).join(', ')}]` : ''))
  }
  for (const mixed of results.scenarios.filter((r) => r.name === 'mixed')) {
    out.push(`mixed (${dbOf(mixed)}): reads at ${mixed.paced_rate}/s, p99 ${mixed.p99_ms.toFixed(2)} ms under a login storm (${(mixed.storm_logins_rps as number).toFixed(1)} logins/s) vs ${(mixed.p99_alone_ms as number).toFixed(2)} ms alone: x${(mixed.p99_ratio as number).toFixed(2)}`)
  }
  return out.join('\n')
}

// The READMEs show the committed run between these markers; bench/tables.ts rewrites it
// from bench/results.json, and test/unit/bench-tables.test.ts fails when they differ.
export const BEGIN_MARK = '<!-- bench-results: generated from bench/results.json by `npx tsx bench/tables.ts`; do not edit -->'
export const END_MARK = '<!-- /bench-results -->'

const runOf = (m: Results['machine']) =>
  `${m.started_at.slice(0, 10)} (commit ${m.commit ?? 'unknown'}, Node ${m.node}, ${m.cpus} cores, load generator on the same cores, ${Math.round(m.elapsed_s)} s)`

/** The markdown between the markers: which run it was, its summary, and the per-algorithm runs. */
export function resultsBlock (results: Results): string {
  const m = results.machine
  const out = [
    `${m.quick ? 'Quick' : 'Full'} run of ${runOf(m)}:`,
    '',
    '```',
    summary(results),
    '```'
  ]
  for (const [alg, run] of Object.entries(results.algorithms ?? {})) {
    out.push('', `JWT_ALG=${alg}, \`npm run bench -- --alg ${alg} --save\`, run of ${runOf(run.machine)}:`, '', '```', table(run.scenarios), '```')
  }
  return out.join('\n')
}

/** `markdown` with the block between the markers replaced; throws if the markers are missing. */
export function replaceResultsBlock (markdown: string, block: string): string {
  const start = markdown.indexOf(BEGIN_MARK)
  const end = markdown.indexOf(END_MARK)
  if (start === -1 || end === -1 || end < start) throw new Error('the bench-results markers are missing')
  return markdown.slice(0, start + BEGIN_MARK.length) + '\n' + block + '\n' + markdown.slice(end)
}
