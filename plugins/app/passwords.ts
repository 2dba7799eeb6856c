import { createHash, randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import bcrypt from 'bcrypt'
import { createBcryptPool, type BcryptEngine } from '../../src/security/bcrypt-pool'

/**
 * bcrypt reads only the first 72 bytes and stops at a NUL byte. Every password is first
 * reduced to base64(SHA-256(utf8 bytes)): 44 ASCII characters with no NUL, so every byte
 * of the password counts and two passwords never collide before bcrypt sees them.
 */
export function prehash (password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('base64')
}

export interface Passwords {
  /** `signal`: the client went away, so work still queued for it is dropped. */
  hash (password: string, signal?: AbortSignal): Promise<string>
  /** Constant work whether or not there is a hash: pass null for an unknown user. */
  verify (password: string, hash: string | null, signal?: AbortSignal): Promise<boolean>
}

/** bcrypt's own async API (libuv's threadpool); the service uses the low-priority pool. */
const libuvBcrypt: Pick<BcryptEngine, 'hash' | 'compare'> = {
  hash: async (data, cost) => await bcrypt.hash(data, cost),
  compare: async (data, hash) => await bcrypt.compare(data, hash)
}

export function createPasswords (cost: number, dummyHash: string, engine: Pick<BcryptEngine, 'hash' | 'compare'> = libuvBcrypt): Passwords {
  return {
    hash: async (password) => await engine.hash(prehash(password), cost),
    async verify (password, hash) {
      // An unknown user is checked against a dummy hash of the same cost, so that the
      // answer and its timing do not reveal whether the account exists.
      const ok = await engine.compare(prehash(password), hash ?? dummyHash)
      return ok && hash !== null
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords
  }
}

export default fp(async function passwords (fastify) {
  const pool = createBcryptPool()
  fastify.addHook('onClose', async () => { await pool.close() })
  const dummyHash = await pool.hash(randomBytes(16).toString('base64'), fastify.config.bcryptCost)
  fastify.decorate('passwords', createPasswords(fastify.config.bcryptCost, dummyHash, pool))
}, { name: 'passwords', dependencies: ['config'] })
