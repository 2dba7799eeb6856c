import t from 'tap'
import { matchTotp, rfcTotp, timeStep, totpCode, newTotpSecret } from '../../src/security/totp'
import { secretBox } from '../../src/security/secret-box'
import { randomBytes } from 'node:crypto'

// RFC 6238, Appendix B: the test vectors (8 digits; the seeds are ASCII strings).
const SEEDS = {
  SHA1: '12345678901234567890',
  SHA256: '12345678901234567890123456789012',
  SHA512: '1234567890123456789012345678901234567890123456789012345678901234'
} as const
const VECTORS: Array<[number, string, string, string]> = [
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826']
]

t.test('RFC 6238 test vectors', async (t) => {
  for (const [seconds, sha1, sha256, sha512] of VECTORS) {
    t.equal(rfcTotp(SEEDS.SHA1, 'SHA1', 8, seconds), sha1, `SHA1 at ${seconds}`)
    t.equal(rfcTotp(SEEDS.SHA256, 'SHA256', 8, seconds), sha256, `SHA256 at ${seconds}`)
    t.equal(rfcTotp(SEEDS.SHA512, 'SHA512', 8, seconds), sha512, `SHA512 at ${seconds}`)
  }
})

t.test('matchTotp: the step of a code, one step of drift either way, nothing else', async (t) => {
  const secret = newTotpSecret()
  const now = 1_800_000_015_000 // 15 s into a step
  const step = timeStep(now)
  t.equal(matchTotp(secret, totpCode(secret, now), now), step)
  t.equal(matchTotp(secret, totpCode(secret, now - 30_000), now), step - 1)
  t.equal(matchTotp(secret, totpCode(secret, now + 30_000), now), step + 1)
  t.equal(matchTotp(secret, totpCode(secret, now - 60_000), now), null, 'two steps back: refused')
  t.equal(matchTotp(secret, totpCode(secret, now + 60_000), now), null, 'two steps ahead: refused')
  t.equal(matchTotp(secret, '12345', now), null, 'not 6 digits')
  t.equal(matchTotp(secret, ` ${totpCode(secret, now)}`, now), null, 'exactly 6 digits')
})

t.test('secret box: AES-256-GCM bound to the user id', async (t) => {
  const box = secretBox(randomBytes(32))
  const sealed = box.seal('JBSWY3DPEHPK3PXP', 'user-a')
  t.notMatch(sealed, /JBSWY3DPEHPK3PXP/)
  t.not(box.seal('JBSWY3DPEHPK3PXP', 'user-a'), sealed, 'a fresh nonce each time')
  t.equal(box.open(sealed, 'user-a'), 'JBSWY3DPEHPK3PXP')
  t.throws(() => box.open(sealed, 'user-b'), 'another user\'s row does not decrypt')
  t.throws(() => secretBox(randomBytes(32)).open(sealed, 'user-a'), 'another key does not decrypt')
  const [v, n, tag, body] = sealed.split('.')
  const flipped = Buffer.from(body, 'base64url')
  flipped[0] ^= 1
  t.throws(() => box.open([v, n, tag, flipped.toString('base64url')].join('.'), 'user-a'), 'tampering is detected')
})
