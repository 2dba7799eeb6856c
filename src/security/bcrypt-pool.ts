import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'

/**
 * bcrypt on a pool of worker threads that run at the lowest CPU priority (nice 19).
 *
 * Why not bcrypt's own async API on libuv's threadpool: its four threads run at the event
 * loop's priority, so on a small machine a login storm takes the CPU from every other
 * request (measured by `npm run bench`, scenario `mixed`). At nice 19 the hashing still
 * uses every idle cycle, so logins per second stay the same, but token reads come first.
 */
export interface BcryptEngine {
  hash (data: string, cost: number): Promise<string>
  compare (data: string, hash: string): Promise<boolean>
  close (): Promise<void>
}

// Plain JavaScript, run by each worker (eval: no build step, works from src/ and dist/).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const bcrypt = require(workerData.bcryptPath)
try {
  // Linux: /proc/thread-self names this thread, and setpriority on a thread id renices
  // that thread only. Elsewhere the pool simply runs at normal priority.
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop())
  require('node:os').setPriority(tid, 19)
} catch {}
parentPort.on('message', ({ id, op, data, arg }) => {
  try {
    const result = op === 'hash' ? bcrypt.hashSync(data, arg) : bcrypt.compareSync(data, arg)
    parentPort.postMessage({ id, result })
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) })
  }
})
`

interface Pending { resolve: (value: string | boolean) => void, reject: (err: Error) => void }

export function createBcryptPool (size = Math.max(2, availableParallelism())): BcryptEngine {
  const pending = new Map<number, Pending>()
  const load: number[] = []
  let nextId = 0
  const workers = Array.from({ length: size }, (_, i) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath: require.resolve('bcrypt') } })
    load.push(0)
    worker.on('message', (msg: { id: number, result?: string | boolean, error?: string }) => {
      if (--load[i] === 0) worker.unref()
      const p = pending.get(msg.id)
      pending.delete(msg.id)
      if (p === undefined) return
      if (msg.error !== undefined) p.reject(new Error(msg.error))
      else p.resolve(msg.result as string | boolean)
    })
    worker.on('error', (err) => {
      for (const p of pending.values()) p.reject(err)
      pending.clear()
    })
    worker.unref() // an idle pool never keeps the process alive; a busy worker does
    return worker
  })

  const run = (op: 'hash' | 'compare', data: string, arg: string | number) => new Promise<string | boolean>((resolve, reject) => {
    // The least busy worker; ties go to the first.
    let best = 0
    for (let i = 1; i < workers.length; i++) if (load[i] < load[best]) best = i
    const id = nextId++
    pending.set(id, { resolve, reject })
    if (load[best]++ === 0) workers[best].ref()
    workers[best].postMessage({ id, op, data, arg })
  })

  return {
    hash: async (data, cost) => await run('hash', data, cost) as string,
    compare: async (data, hash) => await run('compare', data, hash) as boolean,
    async close () { await Promise.all(workers.map((w) => w.terminate())) }
  }
}
