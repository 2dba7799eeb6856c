import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { call } from '../support/http'
import pg from 'pg'
import { build, bearer, DIALECT, login, newUser, ownRedis, PASSWORD, REDIS_URL, redisPrefix, requireRedis, startServer, testDatabase, waitFor } from '../helper'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('revocations survive a restart of the service (memory store, same database file)', async (t) => {
  const env = { DATABASE_URL: await testDatabase(t) }

  const first = await build(t, env)
  const loggedOut = await newUser(first)
  const kept = await newUser(first)
  const deleted = await newUser(first)
  const renewed = await newUser(first)
  const everywhere = await newUser(first)
  const everywhereOther = await login(first, everywhere.username)
  t.equal((await first.inject({ method: 'POST', url: '/auth/logout', headers: loggedOut.auth })).statusCode, 204)
  t.equal((await first.inject({ method: 'DELETE', url: '/users/me', headers: deleted.auth })).statusCode, 204)
  t.equal((await first.inject({ method: 'POST', url: '/auth/logout', headers: everywhere.auth, payload: { scope: 'all' } })).statusCode, 204)
  await first.sessions.renewAccessToken((await first.tokens.verifyAccessToken(renewed.tokens.access_token))!)
  await first.close()

  const second = await build(t, env)
  const me = (token: string) => second.inject({ url: '/users/me', headers: bearer(token) })
  t.equal((await me(loggedOut.tokens.access_token)).statusCode, 401, 'logged-out session')
  t.equal((await me(deleted.tokens.access_token)).statusCode, 401, 'deleted user')
  t.equal((await me(renewed.tokens.access_token)).statusCode, 401, 'single revoked jti')
  t.equal((await me(everywhereOther.access_token)).statusCode, 401, 'logout-all')
  t.equal((await me(kept.tokens.access_token)).statusCode, 200, 'a live token still works')
  t.equal((await second.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: loggedOut.tokens.refresh_token } })).statusCode, 401)
  t.equal((await second.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: kept.tokens.refresh_token } })).statusCode, 200)
  await login(second, kept.username, PASSWORD)
})

t.test('with Redis: outage answers 503 (fail closed), recovery, restart and FLUSHALL lose nothing', async (t) => {
  const server = await ownRedis(t)
  const prefix = redisPrefix()
  // A file, so that a second process can share the database.
  const DATABASE_URL = `file:${join(mkdtempSync(join(tmpdir(), 'auth-flush-')), 'auth.db')}`
  const app = await build(t, { REDIS_URL: server.url, REDIS_PREFIX: prefix, DATABASE_URL })
  const live = await newUser(app)
  const revoked = await newUser(app)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: revoked.auth })).statusCode, 204)
  t.equal((await app.inject({ url: '/users/me', headers: revoked.auth })).statusCode, 401)
  t.equal((await app.inject({ url: '/health' })).json().checks.revocation_store_kind, 'redis')

  // FLUSHALL while connected: the next read notices and rebuilds from the database.
  const admin = new Redis(server.url)
  await admin.flushall()
  admin.disconnect()
  // 401; or 503 while the rebuild is under way (on a loaded machine it can outlast a read's
  // 500 ms wait for the marker): fail closed, asked again until it is done. Never 200.
  const afterFlush: number[] = []
  await waitFor(async () => {
    afterFlush.push((await app.inject({ url: '/users/me', headers: revoked.auth })).statusCode)
    return afterFlush.at(-1) !== 503
  }, 30_000).catch(() => {})
  t.same([...new Set(afterFlush)].filter((s) => s !== 503), [401], 'revoked token stays revoked after FLUSHALL (401, never 200)')
  t.equal((await app.inject({ url: '/users/me', headers: live.auth })).statusCode, 200)
  // The answers above may come from the in-process replica: prove that Redis itself was
  // rebuilt, for the instances that read it.
  const sidKey = `${prefix}sid:${(await app.tokens.verifyAccessToken(revoked.tokens.access_token))!.sid}`
  const reader = new Redis(server.url)
  t.teardown(() => reader.disconnect())
  const rebuilt = await waitFor(async () => (await reader.exists(sidKey)) === 1, 5000).then(() => true, () => false)
  t.ok(rebuilt, 'the revoked session is in Redis again')
  const other = await startServer(t, { REDIS_URL: server.url, REDIS_PREFIX: prefix, DATABASE_URL })
  const meOn = async (token: string) => (await fetch(`${other.url}/users/me`, { headers: bearer(token) })).status
  t.equal(await meOn(revoked.tokens.access_token), 401, 'an instance started after the FLUSHALL refuses it too')
  t.equal(await meOn(live.tokens.access_token), 200, 'and accepts the live one')
  await other.stop()

  await server.stop()
  // Each instance's replica answers until the outage is noticed (the connections drop at
  // once; a hung Redis misses a 1 s heartbeat): meanwhile its answers are still right.
  for (let i = 0; i < 100; i++) {
    const status = (await app.inject({ url: '/users/me', headers: live.auth })).statusCode
    t.equal((await app.inject({ url: '/users/me', headers: revoked.auth })).statusCode === 200, false, 'a revoked token is never accepted')
    if (status === 503) break
    await sleep(20)
  }
  const down = await app.inject({ url: '/users/me', headers: live.auth })
  t.equal(down.statusCode, 503, 'protected route: 503, never 200')
  t.same(down.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Revocation store unavailable' })
  t.equal((await app.inject({ url: '/users/me', headers: revoked.auth })).statusCode, 503, 'even for a revoked token: 503, not 200')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: live.auth })).statusCode, 503)
  t.equal((await app.inject({ method: 'POST', url: '/auth/introspect', payload: { token: live.tokens.access_token } })).statusCode, 503)
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: live.tokens.refresh_token } })
  t.equal(refresh.statusCode, 503, 'refresh: 503')
  const health = await app.inject({ url: '/health' })
  t.equal(health.statusCode, 503)
  t.equal(health.json().checks.revocation_store, 'down')
  t.equal(health.json().checks.database, 'ok')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: live.username, password: PASSWORD } })).statusCode, 200, 'login does not depend on the store')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { username: `${live.username}_2`, password: PASSWORD } })).statusCode, 201, 'nor does register')

  await server.start() // back, and empty
  let status = 0
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await app.inject({ url: '/users/me', headers: live.auth })).statusCode
    if (status !== 200) await sleep(50)
  }
  t.equal(status, 200, 'recovers when Redis is back')
  t.equal((await app.inject({ url: '/users/me', headers: revoked.auth })).statusCode, 401, 'revoked token stays revoked after a Redis restart')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: live.tokens.refresh_token } })).statusCode, 200, 'the 503 did not consume the refresh token')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
})

t.test('the app closes cleanly while Redis is down', async (t) => {
  const server = await ownRedis(t)
  const app = await build(t, { REDIS_URL: server.url, REDIS_PREFIX: redisPrefix() })
  await server.stop()
  await t.resolves(app.close())
})

t.test('two instances (two processes) on one Redis and one database: a logout on one is refused by the other on the next request', async (t) => {
  await requireRedis(t)
  const shared = { REDIS_URL, REDIS_PREFIX: redisPrefix(), DATABASE_URL: await testDatabase(t) }
  const one = await startServer(t, shared)
  const two = await startServer(t, shared)
  const username = `two_${Date.now()}`
  t.equal((await call(one.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } })).status, 201)
  for (let i = 0; i < 30; i++) {
    const { access_token: token } = (await call(two.url, 'POST', '/auth/login', { body: { username, password: PASSWORD } })).body
    t.equal((await call(two.url, 'GET', '/users/me', { token })).status, 200, 'a token of two works on two')
    t.equal((await call(one.url, 'POST', '/auth/logout', { token })).status, 204)
    t.equal((await call(two.url, 'GET', '/users/me', { token })).status, 401, `logout ${i} on one: refused by two on the next request`)
  }
})

t.test('database unavailable: 503 in the contract shape, never a bypass', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  // the connection is gone (PostgreSQL: the pool; a server down or hung: test/e2e/postgres.test.ts)
  await app.db.close()
  for (const [method, url, payload] of [
    ['POST', '/auth/login', { username: u.username, password: PASSWORD }],
    ['POST', '/auth/register', { username: `${u.username}_x`, password: PASSWORD }],
    ['POST', '/auth/refresh', { refresh_token: u.tokens.refresh_token }],
    ['GET', '/users/me', undefined],
    ['GET', '/users/me/sessions', undefined]
  ] as const) {
    const res = await app.inject({ method, url, payload, headers: method === 'GET' ? u.auth : {} })
    t.equal(res.statusCode, 503, `${method} ${url}`)
    t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Database unavailable' })
  }
  const health = await app.inject({ url: '/health' })
  t.equal(health.statusCode, 503)
  t.equal(health.json().checks.database, 'down')
})

if (DIALECT === 'sqlite') {
  t.test('a database locked by another writer: 503 after the busy timeout, and nothing half-written', async (t) => {
    const file = join(mkdtempSync(join(tmpdir(), 'auth-locked-')), 'auth.db')
    const app = await build(t, { DATABASE_URL: `file:${file}` })
    const u = await newUser(app)
    const Database = (await import('better-sqlite3')).default
    const other = new Database(file)
    t.teardown(() => other.close())
    other.exec('BEGIN EXCLUSIVE') // another process holds the write lock
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })
    t.equal(res.statusCode, 503, 'login cannot write its session')
    t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Database unavailable' })
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 200, 'reads still work (WAL)')
    other.exec('ROLLBACK')
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })).statusCode, 200, 'and writes once the lock is gone')
    t.equal((await app.sessions.listActive(u.id)).length, 2, 'the refused login left no session behind')
  })
} else {
  t.test('PostgreSQL: a table locked by another transaction: 503 after the statement timeout, and nothing half-written', async (t) => {
    const app = await build(t)
    const u = await newUser(app)
    const other = new pg.Client({ connectionString: app.config.database.kind === 'postgres' ? app.config.database.url : '' })
    await other.connect()
    t.teardown(() => other.end())
    await other.query('BEGIN')
    await other.query('LOCK TABLE sessions IN EXCLUSIVE MODE') // writes wait, reads do not
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })
    t.equal(res.statusCode, 503, 'login cannot write its session')
    t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Database unavailable' })
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 200, 'reads still work')
    await other.query('ROLLBACK')
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })).statusCode, 200, 'and writes once the lock is gone')
    t.equal((await app.sessions.listActive(u.id)).length, 2, 'the refused login left no session behind')
    t.equal((await app.inject({ url: '/health' })).statusCode, 200)
  })
}
