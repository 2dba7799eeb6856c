/**
 * The `bcrypt` reference: how many logins per second this machine can do at the configured
 * cost, with every libuv threadpool thread busy. Runs bcrypt.compare (what a login does)
 * against a hash of the configured cost, keeping twice UV_THREADPOOL_SIZE operations in
 * flight so that no thread ever waits.
 *
 * Throughput is inflight / mean latency (Little's law) over the operations that finish in
 * the measured window, after a warm-up: with four threads the completions arrive in waves
 * of four, so a plain count over a few seconds is quantised by +-10%. The login and
 * register scenarios are measured the same way (connections / mean latency).
 *
 * Args: --cost N --warmup S --duration S. Prints one JSON line:
 * {"rps", "rps_counted", "p50_ms", "p99_ms", "ops", "threads", "inflight", "cost", "cpu_ms_per_op"}.
 */
import { performance } from 'node:perf_hooks'
import { createHash, randomBytes } from 'node:crypto'
import bcrypt from 'bcrypt'

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}

async function main () {
  const cost = arg('cost', 12)
  const warmup = arg('warmup', 1) * 1000
  const duration = arg('duration', 5) * 1000
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  const inflight = threads * 2
  // The service pre-hashes the password (SHA-256, base64) before bcrypt; do the same work.
  const prehash = (p: string) => createHash('sha256').update(p, 'utf8').digest('base64')
  const password = `bench-password-${randomBytes(6).toString('hex')}`
  const hash = await bcrypt.hash(prehash(password), cost)

  const start = performance.now()
  const windowStart = start + warmup
  const windowEnd = windowStart + duration
  const latencies: number[] = []
  // CPU time of this process over the window (the threadpool's included)
  let cpuStart = process.cpuUsage()
  setTimeout(() => { cpuStart = process.cpuUsage() }, windowStart - performance.now())

  const loop = async () => {
    for (;;) {
      const t0 = performance.now()
      const ok = await bcrypt.compare(prehash(password), hash)
      if (!ok) throw new Error('bcrypt.compare failed')
      const t1 = performance.now()
      if (t1 >= windowStart && t1 <= windowEnd) latencies.push(t1 - t0)
    }
  }
  for (let i = 0; i < inflight; i++) loop().catch((err) => { console.error(err); process.exit(1) })

  // At the end of the window, answer at once: the operations still in flight do not count.
  setTimeout(() => {
    const cpu = process.cpuUsage(cpuStart)
    latencies.sort((a, b) => a - b)
    const pct = (p: number) => latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]
    const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)
    const rps = latencies.length === 0 ? 0 : inflight / (mean / 1000)
    process.stdout.write(JSON.stringify({
      rps,
      rps_counted: latencies.length / (duration / 1000),
      p50_ms: pct(0.5),
      p99_ms: pct(0.99),
      ops: latencies.length,
      threads,
      inflight,
      cost,
      cpu_ms_per_op: rps === 0 ? null : (cpu.user + cpu.system) / 1000 / (rps * duration / 1000)
    }) + '\n', () => process.exit(0))
  }, windowEnd - performance.now())
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
