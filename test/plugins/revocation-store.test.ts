import t from 'tap'
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { RevocationEntry, RevocationLog, RevocationStore } from '../../src/revocation/contract'
import { createMemoryStore } from '../../src/revocation/memory-store'
import { createRedisStore } from '../../src/revocation/redis-store'
import { RECONCILE_MS } from '../../src/revocation/timing'
import { RevocationStoreUnavailableError } from '../../src/errors'
import { ownRedis, REDIS_URL, redisPrefix, requireRedis, waitFor } from '../helper'
import { startRedisProxy } from '../support/redis-proxy'

const noop = () => {}
const logger = { info: noop, warn: noop, error: noop, debug: noop, trace: noop, fatal: noop, child: () => logger, level: 'silent', silent: noop } as unknown as FastifyBaseLogger
const id = () => randomUUID()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** What the database's revocation log would say: a log the test writes to. */
function database () {
  const rows: Array<RevocationEntry & { seq: number }> = []
  const log: RevocationLog = {
    async loadAll (now) {
      return { entries: rows.filter((e) => e.until > now), position: rows.length }
    },
    async since (position, now) {
      return { entries: rows.slice(position).filter((e) => e.until > now), position: rows.length }
    }
  }
  const commit = (e: RevocationEntry) => { rows.push({ ...e, seq: rows.length + 1 }); return e }
  return { log, commit }
}

async function redisStore (t: Test, url: string, prefix: string, log: RevocationLog) {
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1000, retryStrategy: () => 50 })
  redis.on('error', noop)
  await new Promise((resolve) => redis.once('ready', resolve))
  const subscriber = redis.duplicate({ enableOfflineQueue: true })
  subscriber.on('error', noop)
  const store = createRedisStore(redis, { prefix, log, logger, subscriber })
  t.teardown(() => { store.close(); redis.disconnect() })
  await store.rebuild()
  return { store, redis }
}

type Make = (t: Test, log: RevocationLog) => Promise<RevocationStore>

/** One behaviour, two implementations: the same assertions run on memory and on a real Redis. */
function contractSuite (name: string, make: Make) {
  t.test(`${name}: revocation store contract`, async (t) => {
    t.test('nothing is revoked at first', async (t) => {
      const store = await make(t, database().log)
      t.equal(await store.isRevoked(id(), id()), false)
    })

    t.test('a revoked jti blocks that token only', async (t) => {
      const store = await make(t, database().log)
      const jti = id()
      const sid = id()
      await store.revoke([{ kind: 'jti', id: jti, until: Date.now() + 60_000 }])
      t.equal(await store.isRevoked(jti, sid), true)
      t.equal(await store.isRevoked(id(), sid), false, 'another token of the same session')
    })

    t.test('a revoked sid blocks every token of the session', async (t) => {
      const store = await make(t, database().log)
      const sid = id()
      await store.revoke([{ kind: 'sid', id: sid, until: Date.now() + 60_000 }])
      t.equal(await store.isRevoked(id(), sid), true)
      t.equal(await store.isRevoked(id(), id()), false, 'other sessions')
    })

    t.test('jti and sid namespaces do not collide', async (t) => {
      const store = await make(t, database().log)
      const shared = id()
      await store.revoke([{ kind: 'jti', id: shared, until: Date.now() + 60_000 }])
      t.equal(await store.isRevoked(id(), shared), false)
    })

    t.test('entries expire with the tokens they cover; expired ones are never stored', async (t) => {
      const store = await make(t, database().log)
      const soon = id()
      const past = id()
      await store.revoke([
        { kind: 'sid', id: soon, until: Date.now() + 400 },
        { kind: 'sid', id: past, until: Date.now() - 1 }
      ])
      t.equal(await store.isRevoked(id(), soon), true)
      t.equal(await store.isRevoked(id(), past), false)
      await sleep(500)
      t.equal(await store.isRevoked(id(), soon), false, 'gone after its expiry')
    })

    t.test('rebuild loads what the database holds', async (t) => {
      const db = database()
      const store = await make(t, db.log)
      const sid = db.commit({ kind: 'sid', id: id(), until: Date.now() + 60_000 }).id
      const jti = db.commit({ kind: 'jti', id: id(), until: Date.now() + 60_000 }).id
      db.commit({ kind: 'sid', id: 'stale', until: Date.now() - 1000 })
      t.equal(await store.rebuild(), 2, 'only live entries')
      t.equal(await store.isRevoked(id(), sid), true)
      t.equal(await store.isRevoked(jti, id()), true)
      t.equal(await store.isRevoked(id(), 'stale'), false)
    })

    t.test('ping answers while the store is up', async (t) => {
      const store = await make(t, database().log)
      await t.resolves(store.ping())
    })
  })
}

contractSuite('memory', async (t, log) => {
  const store = createMemoryStore(log, 50)
  t.teardown(() => store.close())
  await store.rebuild()
  return store
})

contractSuite('redis', async (t, log) => {
  await requireRedis(t)
  const prefix = redisPrefix()
  const { store, redis } = await redisStore(t, REDIS_URL, prefix, log)
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
  })
  return store
})

t.test('memory: the sweep drops expired entries, so the map never grows without bound', async (t) => {
  const store = createMemoryStore(database().log, 20)
  t.teardown(() => store.close())
  const ids = Array.from({ length: 1000 }, () => id())
  await store.revoke(ids.map((i) => ({ kind: 'sid' as const, id: i, until: Date.now() + 30 })))
  t.equal(store.isRevoked(id(), ids[0]), true)
  await sleep(120)
  for (const i of ids.slice(0, 5)) t.equal(store.isRevoked(id(), i), false)
})

t.test('redis: a revocation writes its key with a TTL and numbers it', async (t) => {
  await requireRedis(t)
  const prefix = redisPrefix()
  const { store, redis } = await redisStore(t, REDIS_URL, prefix, database().log)
  const sid = id()
  const before = Number(await redis.get(`${prefix}seq`) ?? 0)
  await store.revoke([{ kind: 'sid', id: sid, until: Date.now() + 60_000 }])
  const ttl = await redis.pttl(`${prefix}sid:${sid}`)
  t.ok(ttl > 0 && ttl <= 60_000, `pttl ${ttl}`)
  t.equal(Number(await redis.get(`${prefix}seq`)), before + 1, 'the sequence counts every publish')
  await redis.del(`${prefix}sid:${sid}`, `${prefix}rebuilt`, `${prefix}seq`)
})

t.test('redis: answers from the replica while the lease holds, heartbeats included', async (t) => {
  await requireRedis(t)
  const { store } = await redisStore(t, REDIS_URL, redisPrefix(), database().log)
  // A synchronous boolean means the replica answered; a promise would mean a Redis read.
  await waitFor(async () => typeof store.isRevoked(id(), id()) === 'boolean')
  await sleep(1000)
  t.equal(typeof store.isRevoked(id(), id()), 'boolean', 'still trusted: the heartbeats keep renewing the lease')
})

t.test('redis: once a revocation is answered, an instance whose link to Redis stalled refuses the token or fails closed', async (t) => {
  await requireRedis(t)
  const prefix = redisPrefix()
  const proxy = await startRedisProxy({ port: Number(new URL(REDIS_URL).port) })
  t.teardown(() => proxy.close())
  const a = await redisStore(t, REDIS_URL, prefix, database().log)
  // B's database never shows the revocation: its reconciliation (once a second) would repair
  // it, and this is about what holds before then: the lease and the commit-wait (timing.ts).
  const b = await redisStore(t, proxy.url, prefix, database().log)
  await waitFor(async () => typeof b.store.isRevoked(id(), id()) === 'boolean') // B answers from its replica
  proxy.stall() // B's subscription (its heartbeats too) and its commands: nothing moves, nothing closes
  const sid = id()
  await a.store.revoke([{ kind: 'sid', id: sid, until: Date.now() + 60_000 }])
  const answer = await Promise.resolve(b.store.isRevoked(id(), sid)).catch((err: unknown) => err)
  t.ok(answer === true || answer instanceof RevocationStoreUnavailableError,
    `B, asked as soon as the revocation is answered: refused, or an error (got ${String(answer)})`)
  proxy.resume()
  await waitFor(async () => await Promise.resolve(b.store.isRevoked(id(), sid)).catch(() => false) === true)
  t.pass('and B holds it once its link moves again')
})

t.test('redis: a revocation found only in the database (its message lost) reaches the replica and Redis', async (t) => {
  await requireRedis(t)
  const prefix = redisPrefix()
  const db = database()
  const { store, redis } = await redisStore(t, REDIS_URL, prefix, db.log)
  const sid = id()
  // Committed by an instance that died before publishing: only the database knows.
  db.commit({ kind: 'sid', id: sid, until: Date.now() + 60_000 })
  await waitFor(async () => store.isRevoked(id(), sid) === true, RECONCILE_MS * 4)
  t.pass('the replica reconciled with the database')
  await waitFor(async () => (await redis.exists(`${prefix}sid:${sid}`)) === 1, RECONCILE_MS * 2)
  t.pass('and wrote it back into Redis for instances that read Redis')
})

t.test('redis: FLUSHALL and a restart lose nothing; an outage fails closed', async (t) => {
  const server = await ownRedis(t)
  const db = database()
  const prefix = 'fault:'
  const { store } = await redisStore(t, server.url, prefix, db.log)
  const sid = id()
  await store.revoke([db.commit({ kind: 'sid', id: sid, until: Date.now() + 60_000 })]) // database first, then the store

  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  await admin.flushall()
  // Not the replica's memory: Redis itself holds the revocation again (other instances read it).
  await waitFor(async () => (await admin.exists(`${prefix}sid:${sid}`)) === 1)
  t.pass('Redis was rebuilt from the database after FLUSHALL')
  t.equal(await store.isRevoked(id(), sid), true, 'after FLUSHALL: still revoked')
  admin.disconnect()

  await server.stop()
  // The outage is noticed as the lease runs out; from then on: errors, never "not revoked".
  let outcome: unknown
  for (let i = 0; i < 200 && outcome === undefined; i++) {
    try {
      t.equal(await store.isRevoked(id(), sid), true, 'until the outage is noticed, the answer is still right')
    } catch (err) {
      outcome = err
    }
    await sleep(20)
  }
  t.ok(outcome instanceof RevocationStoreUnavailableError, 'Redis down: an error, never "not revoked"')
  await t.rejects(async () => await store.isRevoked(id(), id()), RevocationStoreUnavailableError, 'even for a token never revoked')
  await t.rejects(store.revoke([{ kind: 'jti', id: id(), until: Date.now() + 60_000 }]), RevocationStoreUnavailableError)
  await t.rejects(store.ping(), RevocationStoreUnavailableError)

  await server.start() // comes back empty
  let answer: boolean | undefined
  for (let i = 0; i < 100 && answer === undefined; i++) {
    try { answer = await store.isRevoked(id(), sid) } catch { await sleep(50) }
  }
  t.equal(answer, true, 'after a restart of Redis: still revoked')
  const check = new Redis(server.url)
  t.teardown(() => check.disconnect())
  await waitFor(async () => (await check.exists(`${prefix}sid:${sid}`)) === 1)
  t.pass('and Redis holds it again')
})

t.test('redis: a Redis restarted from an older snapshot is not believed before the rebuild', async (t) => {
  const server = await ownRedis(t, { args: ['--dir', mkdtempSync(join(tmpdir(), 'auth-rdb-'))] })
  const db = database()
  // After the restart, loading the database takes a while: the replica stays untrusted and
  // the rebuild unfinished meanwhile, so reads go to Redis, which holds the old marker.
  let slow = false
  const log: RevocationLog = {
    async loadAll (now) {
      if (slow) await sleep(300)
      return await db.log.loadAll(now)
    },
    since: db.log.since
  }
  const prefix = 'older:'
  const { store, redis } = await redisStore(t, server.url, prefix, log)
  const admin = new Redis(server.url)
  t.equal(await admin.save(), 'OK', 'the snapshot holds the marker of the first rebuild')
  admin.disconnect()
  const sid = id()
  await store.revoke([db.commit({ kind: 'sid', id: sid, until: Date.now() + 60_000 })])
  t.equal(await store.isRevoked(id(), sid), true, 'revoked after the snapshot')

  slow = true
  await server.stop()
  await server.start() // from the snapshot: the marker, but not the revocation
  await waitFor(async () => redis.status === 'ready', 10_000)
  const answers: unknown[] = []
  for (let i = 0; i < 20; i++) {
    answers.push(await Promise.resolve(store.isRevoked(id(), sid)).catch((err: unknown) => err))
  }
  const wrong = answers.filter((a) => a !== true && !(a instanceof RevocationStoreUnavailableError))
  t.equal(wrong.length, 0, `every read while Redis recovers: revoked, or an error (${wrong.length} of 20 said "not revoked")`)
  t.ok(answers.includes(true), 'and the rebuild lets reads answer again')
  const check = new Redis(server.url)
  t.teardown(() => check.disconnect())
  t.equal(await check.exists(`${prefix}sid:${sid}`), 1, 'Redis holds the revocation again')
})
