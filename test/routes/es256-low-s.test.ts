import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bearer, build, login, newUser } from '../helper'
import { parts } from '../jwt-forge'
import { generateSigningJwk } from '../../src/signing-keys'

// Issue 15, finding 8: an ES256 signature (r, s) has a twin (r, n - s) that verifies as
// well; only the low-S form is accepted (RFC 8725: one canonical form), and the service
// signs only that form.

const N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n

function twin (token: string): string {
  const { h, p, s } = parts(token)
  const raw = Buffer.from(s, 'base64url')
  const other = N - BigInt(`0x${raw.subarray(32).toString('hex')}`)
  const sig = Buffer.concat([raw.subarray(0, 32), Buffer.from(other.toString(16).padStart(64, '0'), 'hex')])
  return `${h}.${p}.${sig.toString('base64url')}`
}
const isHigh = (token: string) => BigInt(`0x${Buffer.from(parts(token).s, 'base64url').subarray(32).toString('hex')}`) > N / 2n

t.test('ES256: every token signed is low-S, and the high-S twin of one gets 401', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'auth-lows-')), 'keys.json')
  writeFileSync(file, JSON.stringify({ keys: [await generateSigningJwk('ES256')] }), { mode: 0o600 })
  const app = await build(t, { JWT_ALG: 'ES256', JWT_KEYS_FILE: file })
  const user = await newUser(app)
  // OpenSSL gives either form at random: 12 tokens have a high-S one but once in 4096.
  const tokens: string[] = []
  for (let i = 0; i < 12; i++) tokens.push((await login(app, user.username)).access_token)
  t.same(tokens.filter(isHigh), [], 'every token the service signs is low-S')
  for (const token of tokens.slice(0, 3)) {
    t.equal((await app.inject({ url: '/users/me', headers: bearer(token) })).statusCode, 200)
    t.equal((await app.inject({ url: '/users/me', headers: bearer(twin(token)) })).statusCode, 401, 'its high-S twin: 401')
  }
})
