import { createHash, randomBytes } from 'node:crypto'

/** Refresh tokens: 256 random bits, base64url; only their SHA-256 is stored. */
export function newRefreshToken (): { token: string, hash: string } {
  const token = randomBytes(32).toString('base64url')
  return { token, hash: hashRefreshToken(token) }
}

export function hashRefreshToken (token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url')
}
