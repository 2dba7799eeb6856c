import { randomBytes } from 'node:crypto'
import { Secret, TOTP } from 'otpauth'

/**
 * TOTP (RFC 6238) as the contract fixes it: HMAC-SHA-1, 6 digits, 30 s steps, one step of
 * drift either way. The HOTP arithmetic is otpauth's (a maintained, dependency-light library
 * that exposes the matched step, which the accepted-once rule needs); this module only fixes
 * the parameters and says which time step a code belongs to.
 */
export const TOTP_PERIOD = 30
export const TOTP_DIGITS = 6
export const TOTP_WINDOW = 1
/** 160-bit secrets, the size RFC 4226 recommends for HMAC-SHA-1 */
export const SECRET_BYTES = 20

const totp = (secret: Secret, label = 'user', issuer = '') =>
  new TOTP({ issuer, label, secret, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD })

/** A new random secret, base32 (what authenticator apps take). */
export function newTotpSecret (): string {
  return new Secret({ buffer: new Uint8Array(randomBytes(SECRET_BYTES)).buffer }).base32
}

/** The otpauth:// URI an authenticator app scans, for this secret and account. */
export function otpauthUri (base32Secret: string, username: string, issuer: string): string {
  return totp(Secret.fromBase32(base32Secret), username, issuer).toString()
}

/** The time step of a moment (epoch ms). */
export const timeStep = (now: number) => Math.floor(now / 1000 / TOTP_PERIOD)

/** The code of a step (tests, the README and the bench use it as an authenticator app would). */
export function totpCode (base32Secret: string, now = Date.now()): string {
  return totp(Secret.fromBase32(base32Secret)).generate({ timestamp: now })
}

/**
 * The time step the code belongs to (now, or one step either side), or null when it
 * matches none. The caller accepts it only for a step later than the last one accepted.
 */
export function matchTotp (base32Secret: string, code: string, now = Date.now()): number | null {
  if (!/^[0-9]{6}$/.test(code)) return null
  const delta = totp(Secret.fromBase32(base32Secret)).validate({ token: code, timestamp: now, window: TOTP_WINDOW })
  return delta === null ? null : timeStep(now) + delta
}

/** HOTP for a raw key and counter, for the RFC test vectors (any algorithm, 8 digits there). */
export function rfcTotp (keyAscii: string, algorithm: 'SHA1' | 'SHA256' | 'SHA512', digits: number, seconds: number) {
  const secret = new Secret({ buffer: new Uint8Array(Buffer.from(keyAscii, 'ascii')).buffer })
  return new TOTP({ secret, algorithm, digits, period: TOTP_PERIOD }).generate({ timestamp: seconds * 1000 })
}
