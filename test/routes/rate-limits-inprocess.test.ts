import t from 'tap'
import { build, ownRedis, PASSWORD, redisPrefix, register, uniqueName } from '../helper'
import { LIMITS } from '../../plugins/app/rate-limits'

// Rate-limit rules that need no race: one in-process app, one request at a time. The races
// (bursts, several instances) are in rate-limits.test.ts, against real server processes.

t.test('TRUST_PROXY as a CIDR list: only those peers are believed, and only for the hop they appended', async (t) => {
  const app = await build(t, { TRUST_PROXY: '10.0.0.0/8, 192.0.2.7' })
  const user = await register(app, uniqueName(), PASSWORD)
  const loginFrom = (remoteAddress: string, xff: string | undefined, username: string, password: string) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { username, password }, remoteAddress, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } })
  for (let i = 0; i < LIMITS.loginFailuresPerIp.max; i++) {
    const proxy = i % 2 === 0 ? '10.20.30.40' : '192.0.2.7'
    const res = await loginFrom(proxy, `192.0.2.${100 + i}, 203.0.113.15`, uniqueName('spray'), 'Winter2026!')
    if (res.statusCode !== 401) t.fail(`failure ${i}: ${res.statusCode}`)
  }
  t.equal((await loginFrom('10.1.1.1', '203.0.113.15', user.username, PASSWORD)).statusCode, 429, 'through a trusted proxy: the appended address is limited')
  t.equal((await loginFrom('203.0.113.15', undefined, user.username, PASSWORD)).statusCode, 429, 'and so is that address directly')
  t.equal((await loginFrom('198.51.100.7', '203.0.113.15', user.username, PASSWORD)).statusCode, 200, 'an untrusted peer is counted under its own address, whatever it forwards')
})

t.test('while Redis is down, login is still limited, counted in this process', async (t) => {
  const redis = await ownRedis(t)
  const app = await build(t, { REDIS_URL: redis.url, REDIS_PREFIX: redisPrefix() })
  const user = await register(app)
  await redis.stop()
  const loginFrom = (ip: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password }, remoteAddress: ip })
  // One account from one address: the account+address pair's limit is the first reached.
  for (let i = 0; i < LIMITS.loginFailuresPerAccountIp.max; i++) {
    const res = await loginFrom('10.7.0.1', `wrong ${i}`)
    if (res.statusCode !== 401) t.fail(`failure ${i}: ${res.statusCode}`)
  }
  const over = await loginFrom('10.7.0.1', PASSWORD)
  t.equal(over.statusCode, 429, 'the limit holds without Redis')
  t.ok(Number(over.headers['retry-after']) > 0)
  t.equal((await loginFrom('10.7.0.2', PASSWORD)).statusCode, 200, 'login does not depend on Redis')
})

t.test('registrations per client IP are limited', async (t) => {
  const app = await build(t)
  for (let i = 0; i < LIMITS.registrationsPerIp.max; i++) {
    const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { username: uniqueName('reg'), password: PASSWORD }, remoteAddress: '10.3.0.1' })
    if (res.statusCode !== 201) t.fail(`registration ${i}: ${res.statusCode}`)
  }
  const name = uniqueName('over')
  const over = await app.inject({ method: 'POST', url: '/auth/register', payload: { username: name, password: PASSWORD }, remoteAddress: '10.3.0.1' })
  t.equal(over.statusCode, 429)
  t.ok(Number(over.headers['retry-after']) > 0)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: name, password: PASSWORD }, remoteAddress: '10.3.0.2' })).statusCode, 401, 'nothing was written')
})

t.test('a successful login gives its attempt back: only failures count', async (t) => {
  const app = await build(t)
  const user = await register(app)
  const loginFrom = (password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password }, remoteAddress: '10.6.0.1' })
  for (let i = 0; i < LIMITS.loginFailuresPerAccountIp.max - 1; i++) {
    const res = await loginFrom(`wrong ${i}`)
    if (res.statusCode !== 401) t.fail(`failure ${i}: ${res.statusCode}`)
  }
  for (let i = 0; i < 5; i++) t.equal((await loginFrom(PASSWORD)).statusCode, 200, `success ${i} at the edge of the limit`)
  t.equal((await loginFrom('wrong again')).statusCode, 401, 'the last failure allowed')
  t.equal((await loginFrom(PASSWORD)).statusCode, 429, 'then the limit')
})

t.test('RATE_LIMITS=off disables them (benchmarks and load tests only)', async (t) => {
  const app = await build(t, { RATE_LIMITS: 'off' })
  const user = await register(app)
  for (let i = 0; i < LIMITS.loginFailuresPerIp.max + 5; i++) {
    await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: `wrong ${i}` }, remoteAddress: '10.4.0.1' })
  }
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: PASSWORD }, remoteAddress: '10.4.0.1' })).statusCode, 200)
  const statuses = new Set<number>()
  for (let i = 0; i < LIMITS.refreshesPerIp.max + 5; i++) {
    statuses.add((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: `not-a-token-${i}` }, remoteAddress: '10.4.0.1' })).statusCode)
  }
  t.same([...statuses], [401], 'no refresh is limited')
})
