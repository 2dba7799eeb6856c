'use strict'
// One bcrypt job, run by a thread of the pool in src/security/bcrypt-pool.ts (piscina loads
// it by file name, so it is plain JavaScript that works from src/ and, copied, from dist/).
// bcrypt's errors come back as a value: the pool then knows that any rejection means the
// worker itself died, not that the input was bad. `ms` is the time the hashing took here,
// waits for the CPU included, but not the thread's start or the trip through the queue.
const { performance } = require('node:perf_hooks')
const { parentPort, threadId } = require('node:worker_threads')
const bcrypt = require('bcrypt')

// bcrypt's native module is loaded: the pool may end this thread from now on. Ending a
// thread while that module initialises aborts the whole process ("terminate called after
// throwing an instance of 'Napi::Error'", seen when a pool was closed right after it
// started), so the pool's close() waits for this message.
if (parentPort !== null) parentPort.postMessage({ bcryptLoaded: threadId })

module.exports = function bcryptJob ({ op, data, arg }) {
  const start = performance.now()
  try {
    const result = op === 'hash' ? bcrypt.hashSync(data, arg) : bcrypt.compareSync(data, arg)
    return { result, ms: performance.now() - start }
  } catch (err) {
    return { error: String((err && err.message) || err) }
  }
}
