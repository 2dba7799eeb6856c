// A real parser of the Prometheus text format (not a regex), with the few look-ups the tests need.

const parse = require('parse-prometheus-text-format') as (text: string) => Family[]

// (this parser keeps a histogram's buckets but not its labels: tests count with counters)
interface Sample { value?: string, buckets?: Record<string, string>, labels?: Record<string, string> }
interface Family { name: string, help: string, type: string, metrics: Sample[] }

export interface Scrape {
  families: Family[]
  /** the value of a counter or gauge sample whose labels include `labels` (0 when absent) */
  value (name: string, labels?: Record<string, string>): number
  has (name: string): boolean
}

const matches = (sample: Sample, labels: Record<string, string>) =>
  Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v)

export function parseMetrics (text: string): Scrape {
  const families = parse(text)
  const family = (name: string) => families.find((f) => f.name === name)
  const sum = (name: string, labels: Record<string, string>, pick: (s: Sample) => string | undefined) =>
    (family(name)?.metrics ?? []).filter((s) => matches(s, labels)).reduce((total, s) => total + Number(pick(s) ?? 0), 0)
  return {
    families,
    value: (name, labels = {}) => sum(name, labels, (s) => s.value),
    has: (name) => family(name) !== undefined
  }
}
