import { createHash, randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import bcrypt from 'bcrypt'
import type { FastifyBaseLogger } from 'fastify'
import { createBcryptPool, type BcryptEngine } from '../../src/security/bcrypt-pool'
import { ClientGoneError, OverloadedError } from '../../src/errors'
import type { ServiceMetrics } from '../../src/metrics'

/**
 * bcrypt reads only the first 72 bytes and stops at a NUL byte. Every password is first
 * reduced to base64(SHA-256(utf8 bytes)): 44 ASCII characters with no NUL, so every byte
 * of the password counts and two passwords never collide before bcrypt sees them.
 */
export function prehash (password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('base64')
}

/**
 * Both may throw OverloadedError (503 + Retry-After: too much hashing queued, refused at
 * once), PasswordHashingUnavailableError (503: the thread holding the job died) or
 * ClientGoneError (`signal` aborted while the job was still queued: it never ran).
 */
export interface Passwords {
  /** `signal`: the client went away, so work still queued for it is dropped. */
  hash (password: string, signal?: AbortSignal): Promise<string>
  /** Constant work whether or not there is a hash: pass null for an unknown user. */
  verify (password: string, hash: string | null, signal?: AbortSignal): Promise<boolean>
  /** jobs queued or running (for metrics) */
  queueDepth (): number
  /** how many jobs fit in the queue before load shedding refuses more (Infinity until measured) */
  capacity (): number
}

export interface PasswordsOptions {
  /** where bcrypt runs: the service's low-priority pool (src/security/bcrypt-pool.ts) */
  engine: Pick<BcryptEngine, 'hash' | 'compare'> & { stats?: () => { inFlight: number, capacity?: number } }
  log?: FastifyBaseLogger
  metrics?: ServiceMetrics
}

export function createPasswords (
  cost: number,
  dummyHash: string,
  { engine, log, metrics }: PasswordsOptions
): Passwords {
  // One line per dropped job: the work a flood of impatient clients did not cost.
  const noteFailure = (op: 'hash' | 'verify') => (err: unknown): never => {
    if (err instanceof ClientGoneError) {
      metrics?.hashingDropped.inc()
      log?.info({ event: 'password_hashing.dropped', op }, 'client gone: queued password hashing dropped')
    } else if (err instanceof OverloadedError) {
      metrics?.hashingShed.inc()
    }
    throw err
  }
  const timed = async <T>(work: Promise<T>, op: 'hash' | 'verify'): Promise<T> => {
    const end = metrics?.hashingWait.startTimer()
    const result = await work.catch(noteFailure(op))
    end?.()
    return result
  }
  return {
    hash: async (password, signal) => await timed(engine.hash(prehash(password), cost, signal), 'hash'),
    async verify (password, hash, signal) {
      // An unknown user is checked against a dummy hash of the same cost, so that the
      // answer and its timing do not reveal whether the account exists.
      const ok = await timed(engine.compare(prehash(password), hash ?? dummyHash, signal), 'verify')
      return ok && hash !== null
    },
    queueDepth: () => engine.stats?.().inFlight ?? 0,
    capacity: () => engine.stats?.().capacity ?? Infinity
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords
  }
}

export default fp(async function passwords (fastify) {
  const pool = createBcryptPool(undefined, { maxWaitMs: fastify.config.hashingMaxWaitMs })
  fastify.addHook('onClose', async () => { await pool.close() })
  // The dummy hash on libuv's threads, at normal priority: on a busy machine the pool's
  // nice-19 threads may wait seconds for a core, and the start must not. The pool gets its
  // first measure of a job's duration (which load shedding needs) in the background.
  const dummyHash = await bcrypt.hash(randomBytes(16).toString('base64'), fastify.config.bcryptCost)
  pool.compare(randomBytes(16).toString('base64'), dummyHash).catch(() => {})
  const options = { engine: pool, log: fastify.log, metrics: fastify.metrics }
  const service = createPasswords(fastify.config.bcryptCost, dummyHash, options)
  fastify.decorate('passwords', service)
  fastify.metrics.setSource('hashingQueueDepth', () => service.queueDepth())
}, { name: 'passwords', dependencies: ['config', 'metrics'] })
