/**
 * Tokens the service must refuse, for the `reject` scenario: the cost of saying no.
 * A mix of garbage and forgeries, all distinct: random strings, HS256 tokens signed with
 * another key, real tokens with a tampered payload, `alg: none`, and tokens signed with the
 * service's own key but expired or for another audience (the signature check passes,
 * the claims check refuses), and refresh tokens presented as bearer tokens. With an
 * asymmetric JWT_ALG (`--alg`), "our own key" is the service's signing key, and one more
 * kind is signed by another key of the same type under the service's kid.
 */
import { createHmac, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { createSigner } from 'fast-jwt'

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const HEADER = b64({ alg: 'HS256', typ: 'at+jwt' })

function sign (header: string, payload: string, key: Buffer | string) {
  const input = `${header}.${payload}`
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
}

export interface ForgeInput {
  secret: string
  /** with JWT_ALG EdDSA, ES256 or RS256: the service's signing key */
  signingKey?: { alg: 'EdDSA' | 'ES256' | 'RS256', kid: string, privateKeyPem: string }
  issuer: string
  audience: string
  /** real access tokens of this run */
  accessTokens: string[]
  /** real user ids */
  userIds: string[]
  refreshTokens: string[]
  count: number
}

export function badTokens (input: ForgeInput): string[] {
  const now = Math.floor(Date.now() / 1000)
  const claims = (i: number, extra: Record<string, unknown> = {}) => ({
    sub: input.userIds[i % input.userIds.length],
    sid: randomUUID(),
    jti: randomUUID(),
    iat: now,
    exp: now + 900,
    iss: input.issuer,
    aud: input.audience,
    ...extra
  })
  // Tokens as the service signs them, with its key or (forged) another of the same type.
  const signer = (privateKey: string) => {
    const k = input.signingKey!
    // (fast-jwt's `typ` option is not in its types)
    const signWith = createSigner({ key: privateKey, algorithm: k.alg, kid: k.kid, ...({ typ: 'at+jwt' } as object) })
    return (claims: object) => signWith(claims as Record<string, unknown>)
  }
  const own = input.signingKey === undefined
    ? (claims: object) => sign(HEADER, b64(claims), input.secret)
    : signer(input.signingKey.privateKeyPem)
  const foreignKey = input.signingKey === undefined
    ? undefined
    : ({
        EdDSA: () => generateKeyPairSync('ed25519'),
        ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
        RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 })
      })[input.signingKey.alg]().privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
  const foreign = foreignKey === undefined ? undefined : signer(foreignKey)

  const kinds: Array<(i: number) => string> = [
    // garbage: random base64url text, with and without dots
    (i) => randomBytes(16 + (i % 200)).toString('base64url'),
    (i) => `${randomBytes(20).toString('base64url')}.${randomBytes(40 + (i % 60)).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
    // forged: well-formed HS256 tokens signed with another key
    (i) => sign(HEADER, b64(claims(i)), randomBytes(32)),
    // tampered: a real token whose payload names another user, signature kept
    (i) => {
      const real = input.accessTokens[i % input.accessTokens.length].split('.')
      const payload = JSON.parse(Buffer.from(real[1], 'base64url').toString()) as Record<string, unknown>
      const others = input.userIds.filter((id) => id !== payload.sub)
      payload.sub = others.length > 0 ? others[i % others.length] : randomUUID()
      return `${real[0]}.${b64(payload)}.${real[2]}`
    },
    // alg none, signature stripped
    (i) => `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims(i))}.`,
    // our own key, but expired
    (i) => own(claims(i, { iat: now - 3600, exp: now - 1800 - i })),
    // our own key, another audience
    (i) => own(claims(i, { aud: `other-${i}` })),
    // a refresh token used as a bearer token
    (i) => input.refreshTokens[i % input.refreshTokens.length] + (i >= input.refreshTokens.length ? randomBytes(2).toString('hex') : ''),
    // asymmetric: another key of the right type under our kid (the signature check fails)
    ...(foreign === undefined ? [] : [(i: number) => foreign(claims(i))])
  ]
  const out = new Set<string>()
  for (let i = 0; out.size < input.count; i++) out.add(kinds[i % kinds.length](i))
  return [...out]
}
