import { randomUUID } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { freePort } from './ports'

// The shared Redis every machine of this project runs, and a private one a test may break.

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix of its own, so that parallel test files never see each other's keys. */
export const redisPrefix = () => `test:${randomUUID()}:`

/**
 * Fails (never skips) when the shared Redis cannot be reached: every machine of this
 * project runs one, and a suite that quietly skipped would prove nothing.
 */
export async function requireRedis (t: Test, url = REDIS_URL): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null })
  try {
    await client.connect()
    await client.ping()
  } catch (err) {
    t.fail(`Redis at ${url} is unreachable (${(err as Error).message}); start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`)
    throw err
  } finally {
    client.disconnect()
  }
}

/**
 * A redis-server of the test's own, on a free port, that the test may stop, restart or flush.
 * `args` are added to its command line (e.g. `--dir` for a snapshot, `--replicaof`); it
 * never saves on its own (`--save ""`): a test that wants a snapshot sends SAVE.
 */
export async function ownRedis (t: Test, opts: { args?: string[] } = {}) {
  const port = await freePort()
  let child: ChildProcess | null = null
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...opts.args ?? []]
    child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout!.on('data', (d) => { out += d })
    const deadline = Date.now() + 30_000 // a bound, not a timing: slow under load
    while (!out.includes('Ready to accept connections')) {
      if (Date.now() > deadline) throw new Error('redis-server did not start')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const stop = async () => {
    if (child === null) return
    const c = child
    child = null
    c.kill('SIGKILL')
    if (c.exitCode === null) await once(c, 'exit')
  }
  await start()
  t.teardown(stop)
  return { url: `redis://127.0.0.1:${port}`, port, start, stop }
}
