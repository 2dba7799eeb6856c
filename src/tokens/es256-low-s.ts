/** The order of P-256's group, and half of it: an ES256 signature (r, s) has a twin (r, n - s). */
const P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n
const P256_HALF_N = P256_N >> 1n

const sOf = (raw: Buffer) => BigInt(`0x${raw.subarray(32, 64).toString('hex')}`)

/** Whether an ES256 signature (base64url of r || s) is in its canonical low-S form (RFC 8725 favours one form). */
export function isLowS (signature: string): boolean {
  const raw = Buffer.from(signature, 'base64url')
  return raw.length === 64 && sOf(raw) <= P256_HALF_N
}

/**
 * An ES256 token with its signature in low-S form: the signer (OpenSSL under fast-jwt) gives
 * either twin, and the verifier accepts only the low one, so that a token has one valid text.
 */
export function withLowS (token: string): string {
  const dot = token.lastIndexOf('.')
  const raw = Buffer.from(token.slice(dot + 1), 'base64url')
  const s = sOf(raw)
  if (raw.length !== 64 || s <= P256_HALF_N) return token
  const low = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex')
  return `${token.slice(0, dot + 1)}${Buffer.concat([raw.subarray(0, 32), low]).toString('base64url')}`
}
