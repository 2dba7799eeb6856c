import t from 'tap'
import { build, PASSWORD, REDIS_URL, redisPrefix, register, requireRedis, uniqueName } from '../helper'
import { LIMITS } from '../../plugins/app/rate-limits'

const loginFrom = (app: Awaited<ReturnType<typeof build>>, ip: string, username: string, password: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/login', payload: { username, password }, remoteAddress: ip, headers })

t.test('an account under a distributed guessing attack is locked (429 + Retry-After), others are not', async (t) => {
  const app = await build(t)
  const victim = await register(app)
  const bystander = await register(app)
  for (let i = 0; i < LIMITS.loginFailuresPerAccount.max; i++) {
    const res = await loginFrom(app, `10.1.${i >> 8}.${i & 255}`, victim.username, `wrong guess ${i}`)
    t.equal(res.statusCode, 401, `guess ${i}`)
  }
  const locked = await loginFrom(app, '10.9.9.9', victim.username.toUpperCase(), PASSWORD)
  t.equal(locked.statusCode, 429, 'even the right password, from a fresh IP, any case of the name')
  t.same(Object.keys(locked.json()).sort(), ['error', 'message', 'statusCode'])
  const retryAfter = Number(locked.headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 3600, `Retry-After ${retryAfter}`)
  t.equal((await loginFrom(app, '10.9.9.9', bystander.username, PASSWORD)).statusCode, 200, 'another account is fine')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'health still answers')
})

t.test('one client guessing across many accounts is throttled; X-Forwarded-For does not help', async (t) => {
  const app = await build(t)
  const user = await register(app)
  for (let i = 0; i < LIMITS.loginFailuresPerIp.max; i++) {
    const res = await loginFrom(app, '10.2.0.1', uniqueName('spray'), 'Winter2026!', { 'x-forwarded-for': `192.0.2.${i % 250}` })
    t.equal(res.statusCode, 401)
  }
  const blocked = await loginFrom(app, '10.2.0.1', user.username, PASSWORD, { 'x-forwarded-for': '198.51.100.7' })
  t.equal(blocked.statusCode, 429, 'the IP is throttled, whatever X-Forwarded-For says')
  t.ok(Number(blocked.headers['retry-after']) > 0)
  t.equal((await loginFrom(app, '10.2.0.2', user.username, PASSWORD)).statusCode, 200, 'another client is fine')
})

t.test('with TRUST_PROXY, the client IP comes from X-Forwarded-For', async (t) => {
  const app = await build(t, { TRUST_PROXY: 'true' })
  const user = await register(app)
  for (let i = 0; i < LIMITS.loginFailuresPerIp.max; i++) {
    await loginFrom(app, '127.0.0.1', uniqueName('spray'), 'Winter2026!', { 'x-forwarded-for': '203.0.113.5' })
  }
  t.equal((await loginFrom(app, '127.0.0.1', user.username, PASSWORD, { 'x-forwarded-for': '203.0.113.5' })).statusCode, 429)
  t.equal((await loginFrom(app, '127.0.0.1', user.username, PASSWORD, { 'x-forwarded-for': '203.0.113.6' })).statusCode, 200, 'the proxy itself is not throttled')
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

t.test('RATE_LIMITS=off disables them (benchmarks and load tests only)', async (t) => {
  const app = await build(t, { RATE_LIMITS: 'off' })
  const user = await register(app)
  for (let i = 0; i < LIMITS.loginFailuresPerIp.max + 5; i++) {
    await loginFrom(app, '10.4.0.1', user.username, `wrong ${i}`)
  }
  t.equal((await loginFrom(app, '10.4.0.1', user.username, PASSWORD)).statusCode, 200)
})

t.test('with Redis, every instance shares the counts', async (t) => {
  await requireRedis(t)
  const prefix = redisPrefix()
  const one = await build(t, { REDIS_URL, REDIS_PREFIX: prefix })
  const two = await build(t, { REDIS_URL, REDIS_PREFIX: prefix })
  const user = await register(one)
  for (let i = 0; i < LIMITS.loginFailuresPerIp.max; i++) {
    await loginFrom(i % 2 === 0 ? one : two, '10.5.0.1', uniqueName('spray'), 'Winter2026!')
  }
  t.equal((await loginFrom(two, '10.5.0.1', user.username, PASSWORD)).statusCode, 429)
  t.equal((await loginFrom(one, '10.5.0.1', user.username, PASSWORD)).statusCode, 429)
  t.equal((await loginFrom(one, '10.5.0.2', user.username, PASSWORD)).statusCode, 200)
})
