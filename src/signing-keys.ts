import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'

/**
 * The signing keys of an asymmetric JWT_ALG: JWT_KEYS_FILE, a JWK Set of private keys
 * (docs/api.md, "Scale-out"). Read and checked once at start (src/config.ts), with node:crypto's own
 * JWK import, which is synchronous; signing and verifying are the JOSE libraries' business
 * (plugins/app/tokens.ts).
 */

export const JWT_ALGS = ['HS256', 'EdDSA', 'ES256', 'RS256'] as const
export type JwtAlg = typeof JWT_ALGS[number]
export type AsymmetricAlg = Exclude<JwtAlg, 'HS256'>
export const isJwtAlg = (value: string): value is JwtAlg => (JWT_ALGS as readonly string[]).includes(value)

/** What `GET /.well-known/jwks.json` publishes of a key: its public members only. */
export interface PublicJwk {
  kty: 'OKP' | 'EC' | 'RSA'
  crv?: string
  x?: string
  y?: string
  n?: string
  e?: string
  kid: string
  alg: AsymmetricAlg
  use: 'sig'
}

export interface SigningKey {
  kid: string
  /** PKCS#8 PEM of the private key, for the signer (fast-jwt takes PEM) */
  privateKeyPem: string
  publicJwk: PublicJwk
}

/** A reason, without key material; src/config.ts names the variable. */
export class KeyFileError extends Error {}

const MIN_RSA_BITS = 2048

const NEEDS: Record<AsymmetricAlg, { kty: string, crv?: string, text: string }> = {
  EdDSA: { kty: 'OKP', crv: 'Ed25519', text: 'Ed25519 keys (kty OKP, crv Ed25519)' },
  ES256: { kty: 'EC', crv: 'P-256', text: 'P-256 keys (kty EC, crv P-256)' },
  RS256: { kty: 'RSA', text: `RSA keys of at least ${MIN_RSA_BITS} bits (kty RSA)` }
}

/** The algorithm a key's type calls for, or undefined (the CLI reads a file's algorithm this way). */
export function algorithmOf (jwk: { kty?: unknown, crv?: unknown }): AsymmetricAlg | undefined {
  for (const alg of Object.keys(NEEDS) as AsymmetricAlg[]) {
    const need = NEEDS[alg]
    if (jwk.kty === need.kty && (need.crv === undefined || jwk.crv === need.crv)) return alg
  }
  return undefined
}

// kids are public (they travel in every token header), so messages may quote them.
const KID = /^[\x21-\x7e]{1,128}$/

/** Checks one private JWK against JWT_ALG and returns what the service keeps of it. */
function signingKey (jwk: unknown, index: number, alg: AsymmetricAlg): SigningKey {
  const need = NEEDS[alg]
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) {
    throw new KeyFileError(`key #${index + 1} is not a JSON object`)
  }
  const k = jwk as Record<string, unknown>
  if (typeof k.kid !== 'string' || !KID.test(k.kid)) {
    throw new KeyFileError(`key #${index + 1} has no kid (1-128 printable ASCII characters, no spaces)`)
  }
  const name = `key "${k.kid}"`
  if (k.kty !== need.kty || (need.crv !== undefined && k.crv !== need.crv)) {
    const is = [k.kty, k.crv].filter((v) => typeof v === 'string').join(' ') || 'of no known type'
    throw new KeyFileError(`${name} is ${is}, but JWT_ALG=${alg} needs ${need.text}`)
  }
  if (k.alg !== undefined && k.alg !== alg) {
    throw new KeyFileError(`${name} says alg ${String(k.alg)}, but JWT_ALG is ${alg}`)
  }
  if (k.use !== undefined && k.use !== 'sig') {
    throw new KeyFileError(`${name} says use ${String(k.use)}; signing keys have use "sig"`)
  }
  if (typeof k.d !== 'string') {
    throw new KeyFileError(`${name} is a public key: the file must hold private keys (the first one signs)`)
  }

  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: k as JsonWebKey, format: 'jwk' })
  } catch {
    throw new KeyFileError(`${name} is not a valid ${need.kty} private key`)
  }
  const details = privateKey.asymmetricKeyDetails ?? {}
  const typeOk = alg === 'EdDSA'
    ? privateKey.asymmetricKeyType === 'ed25519'
    : alg === 'ES256'
      ? privateKey.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1'
      : privateKey.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= MIN_RSA_BITS
  if (!typeOk) {
    const what = privateKey.asymmetricKeyType === 'rsa'
      ? `a ${details.modulusLength}-bit RSA key`
      : `a ${privateKey.asymmetricKeyType} key`
    throw new KeyFileError(`${name} is ${what}, but JWT_ALG=${alg} needs ${need.text}`)
  }

  // The published key is derived from the private one, and the file's own public members
  // must agree with it: otherwise every token would fail at every downstream verifier.
  const pub = createPublicKey(privateKey).export({ format: 'jwk' })
  for (const member of ['x', 'y', 'n', 'e'] as const) {
    if (pub[member] !== undefined && k[member] !== undefined && k[member] !== pub[member]) {
      throw new KeyFileError(`${name}: its public part (${member}) does not match its private part`)
    }
  }
  const publicJwk = { kty: need.kty } as PublicJwk
  for (const member of ['crv', 'x', 'y', 'n', 'e'] as const) {
    if (pub[member] !== undefined) publicJwk[member] = pub[member]
  }
  publicJwk.kid = k.kid
  publicJwk.alg = alg
  publicJwk.use = 'sig'
  return {
    kid: k.kid,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    publicJwk
  }
}

/** The keys of a JWK Set's text, in order: the first one signs. Throws KeyFileError. */
export function parseKeySet (text: string, alg: AsymmetricAlg): SigningKey[] {
  let set: unknown
  try {
    set = JSON.parse(text)
  } catch {
    // (V8's message quotes the text, which holds private keys)
    throw new KeyFileError('is not valid JSON')
  }
  if (set === null || typeof set !== 'object' || !Array.isArray((set as { keys?: unknown }).keys)) {
    throw new KeyFileError('must be a JWK Set: {"keys": [...]}')
  }
  const jwks = (set as { keys: unknown[] }).keys
  if (jwks.length === 0) throw new KeyFileError('holds no key')
  const keys = jwks.map((jwk, i) => signingKey(jwk, i, alg))
  const seen = new Set<string>()
  for (const key of keys) {
    if (seen.has(key.kid)) throw new KeyFileError(`has two keys with kid "${key.kid}"; every kid must be unique`)
    seen.add(key.kid)
  }
  return keys
}

export function readKeySet (file: string, alg: AsymmetricAlg): SigningKey[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new KeyFileError(`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}: ${file})`)
  }
  return parseKeySet(text, alg)
}

/**
 * A warning when the keys file (its target, through a symlink) may be read by its group or
 * by others, as ssh warns of a private key file: the service still starts (a shared
 * deployment group may be deliberate), but says so once. Names the file and its mode only.
 */
export function keysFileModeWarning (file: string): string | undefined {
  if (process.platform === 'win32') return undefined // no POSIX modes there
  let mode: number
  try {
    mode = statSync(file).mode & 0o777
  } catch {
    return undefined // it was just read; a file gone since is the next start's business
  }
  if ((mode & 0o077) === 0) return undefined
  const octal = mode.toString(8).padStart(4, '0')
  return `JWT_KEYS_FILE ${file} is mode ${octal}: its private signing keys are readable by group or others. ` +
    `Make it readable by the service's user only: chmod 600 ${file}`
}

/**
 * A new private JWK for `alg`, made by jose (RSA: 2048 bits). Its kid is the RFC 7638
 * thumbprint of its public part: unique per key, and the same wherever it is computed.
 */
export async function generateSigningJwk (alg: AsymmetricAlg): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: MIN_RSA_BITS })
  const jwk = await exportJWK(privateKey)
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' }
}
