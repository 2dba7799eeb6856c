import { createHmac, randomUUID } from 'node:crypto'

/** Builds JWTs by hand, the way an attacker would, for the verifier's attack tests. */
export const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

export function hmac (alg: 'HS256' | 'HS384' | 'HS512', key: string | Buffer, input: string): string {
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg]
  return createHmac(hash, key).update(input).digest('base64url')
}

export function forge (header: unknown, payload: unknown, key: string | Buffer, alg: 'HS256' | 'HS384' | 'HS512' = 'HS256'): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${hmac(alg, key, input)}`
}

/** A payload our verifier accepts, unless a test changes it. */
export function claims (overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000)
  return {
    sub: randomUUID(),
    sid: randomUUID(),
    jti: randomUUID(),
    iat: now,
    exp: now + 600,
    iss: 'auth-service',
    aud: 'auth-service',
    ...overrides
  }
}

export const GOOD_HEADER = { alg: 'HS256', typ: 'at+jwt' }

/** The parts of a real token, to tamper with. */
export function parts (token: string) {
  const [h, p, s] = token.split('.')
  return { h, p, s, header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()) }
}
