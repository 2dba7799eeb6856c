import t, { type Test } from 'tap'
import bcrypt from 'bcrypt'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { getPriority } from 'node:os'
import { join } from 'node:path'
import { createBcryptPool, type BcryptPool } from '../../src/security/bcrypt-pool'
import { ClientGoneError, OverloadedError, PasswordHashingUnavailableError } from '../../src/errors'
import { waitFor } from '../helper'

// The main thread's nice value before any pool exists (0, or more when the tests run niced).
const MAIN_NICE = getPriority()

// The real pool: real threads, real bcrypt. BLOCK is a cost that keeps a thread busy long
// enough for the test to act while it runs; CHEAP is bcrypt's minimum.
const BLOCK = 12
const CHEAP = 4

type Outcome = { ok: true, value: string | boolean } | { ok: false, err: Error }
const settle = (p: Promise<string | boolean>): Promise<Outcome> & { done: boolean } => {
  const s = p.then((value) => ({ ok: true as const, value }), (err: Error) => ({ ok: false as const, err })) as Promise<Outcome> & { done: boolean }
  s.done = false
  s.then(() => { s.done = true }, () => {})
  return s
}
/** Fails (never hangs) if some job never settles: a lost job is the bug these tests look for. */
const all = async (jobs: Array<Promise<Outcome> & { done: boolean }>) => {
  await waitFor(async () => jobs.every((j) => j.done), 60_000)
  return await Promise.all(jobs)
}

function newPool (t: Test, ...args: Parameters<typeof createBcryptPool>): BcryptPool {
  const pool = createBcryptPool(...args)
  t.teardown(() => pool.close())
  return pool
}

t.test('hashes and compares like bcrypt, on threads at nice 19 (the event loop keeps its priority)', async (t) => {
  const pool = newPool(t, 2)
  const hash = await pool.hash('some data', CHEAP)
  t.equal(bcrypt.getRounds(hash), CHEAP)
  t.ok(await bcrypt.compare('some data', hash), 'a pool hash verifies with bcrypt')
  t.equal(await pool.compare('some data', hash), true)
  t.equal(await pool.compare('other data', hash), false)
  t.equal(await pool.compare('x', 'not a bcrypt hash'), false, 'a malformed hash never matches')
  await t.rejects(pool.hash('x', 'not a salt' as unknown as number), { message: /salt/i }, 'a bcrypt error reaches the caller as it is')
  t.equal(await pool.compare('some data', hash), true, 'and the pool goes on')
  if (process.platform === 'linux') {
    // Two jobs at once: one on each thread, so that both have started (and reniced themselves).
    await Promise.all([pool.hash('a', 8), pool.hash('b', 8)])
    // field 19 of /proc/<pid>/task/<tid>/stat is the nice value
    const nice = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16])
    const nices = readdirSync('/proc/self/task').map(nice)
    t.ok(nices.filter((n) => n === 19).length >= 2, `both pool threads at nice 19 (${nices.join(',')})`)
    t.equal(nice(String(process.pid)), MAIN_NICE, 'the main thread is not reniced')
  }
})

t.test('a job whose signal aborts while queued never runs; a running one finishes', async (t) => {
  const pool = newPool(t, 2, { maxWaitMs: Infinity })
  // Both threads busy: everything submitted next waits in the queue.
  const running = new AbortController()
  const blockers = [settle(pool.hash('block 0', BLOCK, running.signal)), settle(pool.hash('block 1', BLOCK))]
  const controllers = Array.from({ length: 6 }, () => new AbortController())
  const queued = controllers.map((c, i) => settle(pool.hash(`queued ${i}`, CHEAP, c.signal)))
  const dispatchedBeforeAbort = pool.stats().dispatched
  // The clients of four queued jobs go away, and so does a blocker's (already running).
  for (const c of controllers.slice(0, 4)) c.abort()
  running.abort()
  const already = new AbortController()
  already.abort()
  await t.rejects(pool.hash('too late', CHEAP, already.signal), ClientGoneError, 'an aborted signal is refused before queueing')

  const [b0, b1] = await all(blockers)
  const results = await all(queued)
  for (const [i, r] of results.entries()) {
    if (i < 4) t.ok(!r.ok && r.err instanceof ClientGoneError, `aborted job ${i} rejected with ClientGoneError`)
    else t.ok(r.ok && await bcrypt.compare(`queued ${i}`, r.value as string), `kept job ${i} hashed`)
  }
  t.ok(b0.ok && await bcrypt.compare('block 0', b0.value as string), 'the running job whose client left was finished')
  t.ok(b1.ok, 'the other blocker too')
  t.equal(dispatchedBeforeAbort, 2, 'when the clients left, only the two blockers were on a thread')
  const stats = pool.stats()
  t.equal(stats.dropped, 4)
  t.equal(stats.dispatched, 4, 'two blockers and two kept jobs reached a thread; the four dropped never did')
  t.equal(stats.completed, 4, 'piscina saw exactly four jobs finish on a thread')
  t.equal(stats.inFlight, 0)
})

t.test('a thread killed mid-job fails that job only; the others finish and the pool goes on', async (t) => {
  const pool = newPool(t, 2, { maxWaitMs: Infinity })
  const jobs = Array.from({ length: 4 }, (_, i) => settle(pool.hash(`data ${i}`, BLOCK)))
  const [victim] = pool.threads
  // Let the two first jobs start hashing, then kill one thread. (terminate() resolves once
  // the thread is gone, which is only after bcrypt's native call returns: the job is lost.)
  await new Promise((resolve) => setTimeout(resolve, 50))
  await victim.terminate()
  const results = await all(jobs)
  const failed = results.filter((r) => !r.ok)
  t.equal(failed.length, 1, 'one job failed: the one on the killed thread')
  const err = (failed[0] as { err: Error } | undefined)?.err
  t.ok(err instanceof PasswordHashingUnavailableError, 'with an error the handlers answer 503')
  t.equal((err as PasswordHashingUnavailableError | undefined)?.statusCode, 503)
  for (const [i, r] of results.entries()) {
    if (r.ok) t.ok(await bcrypt.compare(`data ${i}`, r.value as string), `job ${i} hashed correctly`)
  }
  await waitFor(async () => pool.threads.length === 2 && !pool.threads.includes(victim), 10_000)
  const later = await all([settle(pool.hash('later', CHEAP)), settle(pool.compare('x', await bcrypt.hash('x', CHEAP)))])
  t.ok(later[0].ok && await bcrypt.compare('later', later[0].value as string), 'a later hash works')
  t.same(later[1], { ok: true, value: true }, 'a later compare works')
})

t.test('overload: refused at once with OverloadedError and Retry-After, never queued', async (t) => {
  const maxWaitMs = 300
  const pool = newPool(t, 2, { maxWaitMs, maxQueueMs: Infinity }) // queued jobs never expire here
  await pool.hash('warm up', 8) // the pool learns how long a job takes
  const accepted: Array<Promise<Outcome> & { done: boolean }> = []
  let refused: unknown
  // Submitted without yielding: nothing finishes meanwhile, so the queue only grows.
  for (let i = 0; i < 500 && refused === undefined; i++) {
    const before = pool.stats()
    const job = settle(pool.hash(`flood ${i}`, 8))
    if (pool.stats().inFlight === before.inFlight) {
      refused = await job.then((r) => r.ok ? r.value : r.err)
      const expected = Math.max(1, Math.ceil(before.inFlight * before.averageMs / 2 / 1000))
      t.equal((refused as OverloadedError).retryAfter, expected, 'Retry-After: seconds until the queue ahead drains')
      t.ok(before.inFlight * before.averageMs / 2 > maxWaitMs, 'refused only once the wait estimate passed the limit')
    } else {
      accepted.push(job)
    }
  }
  t.ok(refused instanceof OverloadedError, 'a job past the limit is refused')
  t.equal((refused as OverloadedError).statusCode, 503)
  t.ok((refused as OverloadedError).retryAfter >= 1, 'retryAfter is at least one second')
  t.ok(accepted.length >= 1, `jobs within the limit were accepted (${accepted.length})`)
  const results = await all(accepted)
  t.ok(results.every((r) => r.ok), 'every accepted job finished')
  t.equal(pool.stats().dispatched, accepted.length + 1, 'the refused job never reached a thread')
  t.equal(pool.stats().inFlight, 0)
  t.ok(await pool.compare('flood 0', (results[0] as { value: string }).value), 'and the pool takes work again')
})

t.test('a job still queued after maxQueueMs is refused with 503, never run; the running one finishes', async (t) => {
  const pool = newPool(t, 1, { maxWaitMs: 50, maxQueueMs: 100 })
  const running = settle(pool.hash('keeps the only thread busy', 14))
  await waitFor(async () => pool.stats().dispatched === 1)
  const queued = settle(pool.hash('waits behind it', CHEAP)) // admitted: no job has finished, no estimate yet
  const [late] = await all([queued])
  t.ok(!late.ok && late.err instanceof OverloadedError, 'refused once it had waited too long')
  t.ok(!late.ok && (late.err as OverloadedError).retryAfter >= 1)
  const [first] = await all([running])
  t.ok(first.ok, 'the running job finished')
  t.equal(pool.stats().dispatched, 1, 'the expired job never reached a thread')
})

t.test('close() ends the threads; later jobs fail with 503', async (t) => {
  const pool = createBcryptPool(2)
  await pool.hash('x', CHEAP)
  await pool.close()
  t.equal(pool.threads.length, 0)
  await t.rejects(pool.hash('x', CHEAP), PasswordHashingUnavailableError)
})

t.test('close() right after start ends each thread only once bcrypt has loaded in it', async (t) => {
  // Ending a thread while bcrypt's native module initialises aborts the whole process
  // (SIGABRT, "terminate called after throwing an instance of 'Napi::Error'"): a test
  // that closed an app at once crashed that way in CI. Each round closes a new pool at
  // once and records, per thread, whether bcrypt had loaded before the thread exited.
  for (let round = 0; round < 5; round++) {
    const pool = createBcryptPool(2)
    const threads = pool.threads
    t.equal(threads.length, 2)
    const events: string[] = []
    const ids = threads.map((w) => w.threadId) // a Worker's threadId is -1 once it exits
    const exits = threads.map(async (w, i) => {
      w.on('message', (m: { bcryptLoaded?: number }) => { if (m?.bcryptLoaded === ids[i]) events.push(`loaded ${ids[i]}`) })
      await once(w, 'exit')
      events.push(`exit ${ids[i]}`)
    })
    await pool.close()
    await Promise.all(exits)
    for (const id of ids) {
      const loaded = events.indexOf(`loaded ${id}`)
      t.ok(loaded !== -1 && loaded < events.indexOf(`exit ${id}`), `round ${round}: thread loaded bcrypt before it ended`)
    }
  }
})

t.test('an idle pool never keeps the process alive', async (t) => {
  // A process that used the pool and never closed it still exits by itself.
  const poolModule = join(__dirname, '..', '..', 'src', 'security', 'bcrypt-pool.ts')
  const child = spawn(process.execPath, ['--import', 'tsx', '-e',
    `require(${JSON.stringify(poolModule)}).createBcryptPool(2).hash('x', 4).then((h) => console.log(h.length))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code, signal] = await once(child, 'exit')
  clearTimeout(killer)
  t.equal(signal, null, 'exited by itself, not killed')
  t.equal(code, 0)
  t.equal(out.trim(), '60', 'after hashing')
})
