import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ConfigError, loadConfig } from '../../src/config'

const base = { JWT_SECRET: randomBytes(32).toString('base64url') }

t.test('MFA_ENCRYPTION_KEY and MFA_ENROLMENT', async (t) => {
  const prod = { ...base, NODE_ENV: 'production' }
  t.throws(() => loadConfig(prod), new ConfigError('MFA_ENCRYPTION_KEY',
    'is required when NODE_ENV=production and two-factor enrolment is on (MFA_ENROLMENT=on, the default)'),
  'production refuses to start without the key while enrolment is allowed')
  const off = loadConfig({ ...prod, MFA_ENROLMENT: 'off' })
  t.equal(off.mfa.key, undefined, 'enrolment off: no key needed')
  t.equal(off.mfa.enrolment, false)
  const key = randomBytes(32)
  const withKey = loadConfig({ ...prod, MFA_ENCRYPTION_KEY: key.toString('base64') })
  t.same(withKey.mfa.key, key, 'base64 of 32 bytes')
  t.same(loadConfig({ ...prod, MFA_ENCRYPTION_KEY: key.toString('base64url') }).mfa.key, key, 'base64url too')
  t.throws(() => loadConfig({ ...prod, MFA_ENCRYPTION_KEY: randomBytes(16).toString('base64') }), /MFA_ENCRYPTION_KEY/,
    'a short key is refused, naming the variable')
  const dev = loadConfig(base)
  t.equal(dev.mfa.ephemeralKey, true, 'elsewhere a random key is made (with a warning at start)')
  t.equal(dev.mfa.key?.length, 32)
})
