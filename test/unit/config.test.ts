import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config'

const secret = 'x'.repeat(40)

t.test('defaults match docs/api.md', async (t) => {
  const c = loadConfig({})
  t.equal(c.port, 3000)
  t.equal(c.host, '127.0.0.1')
  t.same(c.database, { kind: 'sqlite', filename: './data/auth.db' })
  t.equal(c.redisUrl, undefined)
  t.equal(c.jwt.issuer, 'auth-service')
  t.equal(c.jwt.audience, 'auth-service')
  t.equal(c.accessTokenTtl, 900)
  t.equal(c.refreshTokenTtl, 2592000)
  t.equal(c.bcryptCost, 12)
  t.equal(c.compatRoutes, true)
  t.equal(c.corsOrigin, undefined)
  t.equal(c.rateLimits, true)
  t.equal(c.trustProxy, false)
  t.equal(c.logLevel, 'info')
})

t.test('without JWT_SECRET outside production: a random 256-bit key, never a fixed one', async (t) => {
  const a = loadConfig({})
  const b = loadConfig({})
  t.ok(a.jwt.ephemeralSecret)
  t.equal(a.jwt.secret.length, 32)
  t.not(a.jwt.secret.toString('hex'), b.jwt.secret.toString('hex'))
})

t.test('BCRYPT_COST below the floor of 10 only for a test suite (NODE_ENV=test), down to 4', async (t) => {
  t.equal(loadConfig({ NODE_ENV: 'test', BCRYPT_COST: '4' }).bcryptCost, 4)
  t.equal(loadConfig({ NODE_ENV: 'test', BCRYPT_COST: '9' }).bcryptCost, 9)
  t.equal(loadConfig({ BCRYPT_COST: '10' }).bcryptCost, 10, 'the floor everywhere else')
  t.throws(() => loadConfig({ BCRYPT_COST: '9' }), /at least 10/)
})

t.test('each bad value names its variable', async (t) => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ NODE_ENV: 'production' }, 'JWT_SECRET'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ JWT_SECRET: 'x'.repeat(31) }, 'JWT_SECRET'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ BCRYPT_COST: '9' }, 'BCRYPT_COST'],
    [{ BCRYPT_COST: '9', NODE_ENV: 'production', JWT_SECRET: secret }, 'BCRYPT_COST'],
    [{ BCRYPT_COST: '4', NODE_ENV: 'development' }, 'BCRYPT_COST'],
    [{ BCRYPT_COST: '3', NODE_ENV: 'test' }, 'BCRYPT_COST'],
    [{ BCRYPT_COST: '16' }, 'BCRYPT_COST'],
    [{ ACCESS_TOKEN_TTL: '-5' }, 'ACCESS_TOKEN_TTL'],
    [{ ACCESS_TOKEN_TTL: '1.5' }, 'ACCESS_TOKEN_TTL'],
    [{ REFRESH_TOKEN_TTL: '100', ACCESS_TOKEN_TTL: '900' }, 'REFRESH_TOKEN_TTL'],
    [{ COMPAT_ROUTES: 'yes' }, 'COMPAT_ROUTES'],
    [{ RATE_LIMITS: 'maybe' }, 'RATE_LIMITS'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ DATABASE_URL: 'postgres://' }, 'DATABASE_URL'],
    [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE'],
    [{ DATABASE_POOL_SIZE: '101' }, 'DATABASE_POOL_SIZE'],
    [{ DATABASE_URL: 'mysql://localhost/test' }, 'DATABASE_URL'],
    [{ CORS_ORIGIN: 'not a url' }, 'CORS_ORIGIN'],
    [{ WORKERS: '2' }, 'WORKERS'],
    [{ TRUST_PROXY: 'true' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: 'TRUE' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '0' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: 'yes' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: 'loopback' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.0/255.0.0.0' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '0.0.0.0/0' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '::/0' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: 'fd00::/129' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.1,' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.1, 1.2.3' }, 'TRUST_PROXY']
  ]
  for (const [env, variable] of bad) {
    let error: unknown
    try {
      loadConfig(env)
    } catch (err) {
      error = err
    }
    t.ok(error instanceof ConfigError, `${JSON.stringify(env).slice(0, 60)} is refused`)
    t.equal((error as ConfigError).variable, variable)
    t.match((error as ConfigError).message, variable)
  }
})

t.test('TRUST_PROXY=true is refused with what to give instead', async (t) => {
  t.throws(() => loadConfig({ TRUST_PROXY: 'true' }), { name: 'ConfigError', variable: 'TRUST_PROXY', message: /hop count.*addresses/ })
})

t.test('TRUST_PROXY: unset trusts none, a hop count, or proxy addresses/CIDRs', async (t) => {
  t.equal(loadConfig({ TRUST_PROXY: '' }).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false, 'the old default still means none')
  t.equal(loadConfig({ TRUST_PROXY: '1' }).trustProxy, 1)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2)
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.5, 10.1.0.0/16,::1, fd00::/8' }).trustProxy, ['10.0.0.5', '10.1.0.0/16', '::1', 'fd00::/8'])
  t.same(loadConfig({ TRUST_PROXY: '127.0.0.1/32' }).trustProxy, ['127.0.0.1/32'])
})

t.test('the secret never appears in a config error', async (t) => {
  try {
    loadConfig({ JWT_SECRET: 'tooshort-secret-value' })
    t.fail('should throw')
  } catch (err) {
    t.notMatch((err as Error).message, /tooshort-secret-value/)
  }
})

t.test('valid values are parsed', async (t) => {
  const c = loadConfig({
    NODE_ENV: 'production',
    MFA_ENROLMENT: 'off', // production needs MFA_ENCRYPTION_KEY while enrolment is on (test/unit/mfa-config.test.ts)
    JWT_SECRET: secret,
    PORT: '8080',
    DATABASE_URL: 'file:/tmp/x.db',
    REDIS_URL: 'redis://127.0.0.1:6379',
    CORS_ORIGIN: 'https://a.example, http://localhost:5173',
    COMPAT_ROUTES: 'false',
    RATE_LIMITS: 'off',
    WORKERS: '2'
  })
  t.equal(c.production, true)
  t.equal(c.jwt.ephemeralSecret, false)
  t.equal(c.jwt.secret.toString(), secret)
  t.equal(c.port, 8080)
  t.same(c.database, { kind: 'sqlite', filename: '/tmp/x.db' })
  t.same(c.corsOrigin, ['https://a.example', 'http://localhost:5173'])
  t.equal(c.compatRoutes, false)
  t.equal(c.rateLimits, false)
  t.equal(c.workers, 2)
  t.same(loadConfig({ DATABASE_URL: ':memory:' }).database, { kind: 'sqlite', filename: ':memory:' })
  t.same(loadConfig({ DATABASE_URL: 'postgres://u@db.internal:5433/auth' }).database, { kind: 'postgres', url: 'postgres://u@db.internal:5433/auth', poolSize: 10, startWaitMs: 30_000 })
  t.same(loadConfig({ DATABASE_URL: 'postgresql://127.0.0.1/auth', DATABASE_POOL_SIZE: '3', DATABASE_START_WAIT_MS: '0' }).database, { kind: 'postgres', url: 'postgresql://127.0.0.1/auth', poolSize: 3, startWaitMs: 0 })
  t.equal(loadConfig({ CORS_ORIGIN: '*' }).corsOrigin, '*')
})
