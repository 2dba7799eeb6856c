import { createHash, randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import bcrypt from 'bcrypt'

/**
 * bcrypt reads only the first 72 bytes and stops at a NUL byte. Every password is first
 * reduced to base64(SHA-256(utf8 bytes)): 44 ASCII characters with no NUL, so every byte
 * of the password counts and two passwords never collide before bcrypt sees them.
 */
export function prehash (password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('base64')
}

export interface Passwords {
  hash (password: string): Promise<string>
  /** Constant work whether or not there is a hash: pass null for an unknown user. */
  verify (password: string, hash: string | null): Promise<boolean>
}

export function createPasswords (cost: number, dummyHash: string): Passwords {
  return {
    hash: async (password) => await bcrypt.hash(prehash(password), cost),
    async verify (password, hash) {
      // An unknown user is checked against a dummy hash of the same cost, so that the
      // answer and its timing do not reveal whether the account exists.
      const ok = await bcrypt.compare(prehash(password), hash ?? dummyHash)
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
  const dummyHash = await bcrypt.hash(randomBytes(16).toString('base64'), fastify.config.bcryptCost)
  fastify.decorate('passwords', createPasswords(fastify.config.bcryptCost, dummyHash))
}, { name: 'passwords', dependencies: ['config'] })
