import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import type { Worker } from 'node:worker_threads'
import { Piscina, queueOptionsSymbol } from 'piscina'
import { ClientGoneError, OverloadedError, PasswordHashingUnavailableError } from '../errors'

/**
 * bcrypt on a pool of worker threads (piscina) that run at the lowest CPU priority (nice 19).
 *
 * Why not bcrypt's own async API on libuv's threadpool: its four threads run at the event
 * loop's priority, so on a small machine a login storm takes the CPU from every other
 * request (measured by `npm run bench`, scenario `mixed`). At nice 19 the hashing still
 * uses every idle cycle, so logins per second stay the same, but token reads come first.
 *
 * Load shedding: a job is refused at once with OverloadedError (503 + Retry-After) when
 * the jobs ahead of it would take more than `maxWaitMs` to finish, from a running average
 * of one job's duration. A job whose caller's signal aborts while it is still queued is
 * removed from the queue and never runs (ClientGoneError). A job already running when its
 * client goes is left to finish: bcrypt runs in native code that terminating the thread
 * cannot interrupt (the thread only stops once the hash is done), so killing it would save
 * no CPU, and piscina would start a replacement thread at once, in the middle of the storm.
 * A thread that dies fails only the job it held (PasswordHashingUnavailableError, 503);
 * piscina starts a new one and the other jobs go on.
 */
export interface BcryptEngine {
  hash (data: string, cost: number, signal?: AbortSignal): Promise<string>
  compare (data: string, hash: string, signal?: AbortSignal): Promise<boolean>
  close (): Promise<void>
}

export interface BcryptPoolStats {
  /** jobs accepted and not settled yet: queued or running */
  inFlight: number
  /** jobs handed to a worker thread (each one ran bcrypt, or its thread died) */
  dispatched: number
  /** jobs piscina saw finish on a thread, with a result or because the thread died */
  completed: number
  /** queued jobs dropped because their caller's signal aborted */
  dropped: number
  /** running average of one job's duration, ms (0 until a job has finished) */
  averageMs: number
  /** jobs the threads can finish within maxWaitMs at that average (Infinity until measured) */
  capacity: number
}

export interface BcryptPool extends BcryptEngine {
  stats (): BcryptPoolStats
  /** the live worker threads (tests kill one to show that the pool survives) */
  readonly threads: Worker[]
}

export interface BcryptPoolOptions {
  threads?: number
  /** refuse new jobs when the queue ahead would take longer than this (ms) */
  maxWaitMs?: number
  /** refuse a job still queued after this long (ms; default 3 x maxWaitMs) */
  maxQueueMs?: number
}

type WorkerAnswer = { result: string | boolean, ms: number, error?: undefined } | { error: string }

/** What the load balancer sees of a task: set when a thread takes it. */
interface JobState { dispatched: boolean }

type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>

const WORKER_FILE = join(__dirname, 'bcrypt-worker.js')
// Weight of the newest sample in the running average: it follows a change of load within
// a few jobs without jumping on one slow job.
const AVERAGE_WEIGHT = 0.2
const THREAD_LOAD_WAIT_MS = 10_000

export function createBcryptPool (
  threads = Math.max(2, availableParallelism()),
  { maxWaitMs = 2000, maxQueueMs = 3 * maxWaitMs }: Omit<BcryptPoolOptions, 'threads'> = {}
): BcryptPool {
  let inFlight = 0
  let dispatched = 0
  let dropped = 0
  let averageMs = 0

  // piscina's own least-busy choice for one task per thread (the first idle thread), which
  // also tells the job the moment it leaves the queue: from then on an abort no longer
  // drops it. The job travels on the task under queueOptionsSymbol, a symbol key that
  // postMessage does not copy to the thread.
  const loadBalancer: LoadBalancer = (task, workers) => {
    const idle = workers.find((w) => w.currentUsage === 0 && !w.terminating && !w.destroyed) ?? null
    if (idle !== null) {
      const job = task[queueOptionsSymbol] as JobState | null
      if (job !== null) job.dispatched = true
      dispatched++
    }
    return idle
  }

  const pool = new Piscina({
    filename: WORKER_FILE,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    // nice(2) through @napi-rs/nice, per thread on Linux: the event loop keeps its priority.
    niceIncrement: 19,
    // The worker is plain JavaScript: it needs none of the parent's loaders (tsx and tap's
    // hooks under test), which would only slow every thread's start.
    execArgv: [],
    loadBalancer,
    recordTiming: false
  })
  // A thread that dies with no job emits 'error' on the pool: piscina has replaced it already.
  pool.on('error', () => {})

  // Threads whose bcrypt module has loaded (see bcrypt-worker.js): close() ends a thread
  // only once it is loaded or gone, since ending one mid-load aborts the process.
  const loaded = new Set<number>()
  const onLoaded = new Map<number, () => void>()
  pool.on('message', (message: { bcryptLoaded?: number }) => {
    const id = message?.bcryptLoaded
    if (typeof id !== 'number') return
    loaded.add(id)
    onLoaded.get(id)?.()
  })
  const threadsLoaded = async (): Promise<void> => {
    await Promise.all(pool.threads.filter((w) => w.threadId !== -1 && !loaded.has(w.threadId)).map(async (w) =>
      await new Promise<void>((resolve) => {
        onLoaded.set(w.threadId, resolve)
        w.once('exit', () => resolve())
        // a module load takes milliseconds; a thread stuck in one for this long is ended anyway
        setTimeout(resolve, THREAD_LOAD_WAIT_MS).unref()
      })))
  }

  let closed = false
  async function run (
    op: 'hash' | 'compare', data: string, arg: string | number, signal?: AbortSignal
  ): Promise<string | boolean> {
    // piscina would start new threads for a job sent after destroy()
    if (closed) throw new PasswordHashingUnavailableError(new Error('pool closed'))
    if (signal?.aborted === true) throw new ClientGoneError()
    const waitMs = inFlight * averageMs / threads
    if (waitMs > maxWaitMs) throw new OverloadedError(Math.max(1, Math.ceil(waitMs / 1000)))

    const job: JobState = { dispatched: false }
    const queued = new AbortController()
    const onAbort = () => { if (!job.dispatched) queued.abort() }
    signal?.addEventListener('abort', onAbort, { once: true })
    // The estimate above assumes the threads get the CPU. When they do not (a machine
    // busy with other work: the threads run at nice 19), a job still queued after
    // maxQueueMs is refused with 503 too, rather than outlive its client's patience.
    let expired = false
    const expiry = Number.isFinite(maxQueueMs)
      ? setTimeout(() => {
        if (job.dispatched) return
        expired = true
        queued.abort()
      }, maxQueueMs).unref()
      : undefined
    inFlight++
    let answer: WorkerAnswer
    try {
      answer = await pool.run({ op, data, arg, [queueOptionsSymbol]: job }, { signal: queued.signal })
    } catch (err) {
      if (expired) throw new OverloadedError(Math.max(1, Math.ceil(inFlight * averageMs / threads / 1000)))
      if (queued.signal.aborted) {
        dropped++
        throw new ClientGoneError()
      }
      throw new PasswordHashingUnavailableError(err)
    } finally {
      clearTimeout(expiry)
      inFlight--
      signal?.removeEventListener('abort', onAbort)
    }
    if (answer.error !== undefined) throw new Error(answer.error)
    averageMs = averageMs === 0 ? answer.ms : averageMs + AVERAGE_WEIGHT * (answer.ms - averageMs)
    return answer.result
  }

  return {
    hash: async (data, cost, signal) => await run('hash', data, cost, signal) as string,
    compare: async (data, hash, signal) => await run('compare', data, hash, signal) as boolean,
    stats: () => ({
      inFlight,
      dispatched,
      completed: pool.completed,
      dropped,
      averageMs,
      capacity: averageMs === 0 ? Infinity : maxWaitMs * threads / averageMs
    }),
    get threads () { return pool.threads },
    // Ends the threads now: jobs queued or running fail with PasswordHashingUnavailableError.
    async close () {
      closed = true
      await threadsLoaded()
      await pool.destroy()
    }
  }
}
