import t from 'tap'
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { createMemoryStore, createRedisStore, type RevocationEntry, type RevocationStore } from '../../plugins/app/revocation-store'
import { ownRedis, REDIS_URL, redisPrefix, requireRedis } from '../helper'
import { RevocationStoreUnavailableError } from '../../src/errors'

const noop = () => {}
const log = { info: noop, warn: noop, error: noop, debug: noop, trace: noop, fatal: noop, child: () => log, level: 'silent', silent: noop } as unknown as FastifyBaseLogger
const id = () => randomUUID()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** What the database would say: a loader the test controls. */
function source () {
  const entries: RevocationEntry[] = []
  return { entries, load: async (now: number) => entries.filter((e) => e.until > now) }
}

type Make = (t: Test, load: (now: number) => Promise<RevocationEntry[]>) => Promise<RevocationStore>

/** One behaviour, two implementations: the same assertions run on memory and on a real Redis. */
function sharedSuite (name: string, make: Make) {
  t.test(`${name}: revocation store contract`, async (t) => {
    t.test('nothing is revoked at first', async (t) => {
      const store = await make(t, source().load)
      t.equal(await store.isRevoked(id(), id()), false)
    })

    t.test('a revoked jti blocks that token only', async (t) => {
      const store = await make(t, source().load)
      const jti = id()
      const sid = id()
      await store.revoke([{ kind: 'jti', id: jti, until: Date.now() + 60_000 }])
      t.equal(await store.isRevoked(jti, sid), true)
      t.equal(await store.isRevoked(id(), sid), false, 'another token of the same session')
    })

    t.test('a revoked sid blocks every token of the session', async (t) => {
      const store = await make(t, source().load)
      const sid = id()
      await store.revoke([{ kind: 'sid', id: sid, until: Date.now() + 60_000 }])
      t.equal(await store.isRevoked(id(), sid), true)
      t.equal(await store.isRevoked(id(), sid), true)
      t.equal(await store.isRevoked(id(), id()), false, 'other sessions')
    })

    t.test('jti and sid namespaces do not collide', async (t) => {
      const store = await make(t, source().load)
      const shared = id()
      await store.revoke([{ kind: 'jti', id: shared, until: Date.now() + 60_000 }])
      t.equal(await store.isRevoked(id(), shared), false)
    })

    t.test('entries expire with the tokens they cover; expired ones are never stored', async (t) => {
      const store = await make(t, source().load)
      const soon = id()
      const past = id()
      await store.revoke([
        { kind: 'sid', id: soon, until: Date.now() + 150 },
        { kind: 'sid', id: past, until: Date.now() - 1 }
      ])
      t.equal(await store.isRevoked(id(), soon), true)
      t.equal(await store.isRevoked(id(), past), false)
      await sleep(250)
      t.equal(await store.isRevoked(id(), soon), false, 'gone after its expiry')
    })

    t.test('rebuild loads what the database holds', async (t) => {
      const db = source()
      const store = await make(t, db.load)
      const sid = id()
      const jti = id()
      db.entries.push({ kind: 'sid', id: sid, until: Date.now() + 60_000 }, { kind: 'jti', id: jti, until: Date.now() + 60_000 })
      db.entries.push({ kind: 'sid', id: 'stale', until: Date.now() - 1000 })
      t.equal(await store.isRevoked(id(), sid), false, 'not yet loaded')
      t.equal(await store.rebuild(), 2, 'only live entries')
      t.equal(await store.isRevoked(id(), sid), true)
      t.equal(await store.isRevoked(jti, id()), true)
      t.equal(await store.isRevoked(id(), 'stale'), false)
    })

    t.test('ping answers while the store is up', async (t) => {
      const store = await make(t, source().load)
      await t.resolves(store.ping())
    })
  })
}

sharedSuite('memory', async (t, load) => {
  const store = createMemoryStore(load, 50)
  t.teardown(() => store.close())
  await store.rebuild()
  return store
})

for (const replica of [false, true]) {
  sharedSuite(replica ? 'redis with a local replica' : 'redis', async (t, load) => {
    await requireRedis(t)
    const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1000 })
    await new Promise((resolve) => redis.once('ready', resolve))
    const prefix = redisPrefix()
    const store = createRedisStore(redis, { prefix, load, log, subscriber: replica ? redis.duplicate({ enableOfflineQueue: true }) : undefined })
    t.teardown(async () => {
      store.close()
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    })
    await store.rebuild()
    return store
  })
}

t.test('redis with replicas: a revocation by one instance is honoured by another at once', async (t) => {
  await requireRedis(t)
  const prefix = redisPrefix()
  const db = source()
  const make = async () => {
    const redis = new Redis(REDIS_URL, { enableOfflineQueue: false })
    await new Promise((resolve) => redis.once('ready', resolve))
    const store = createRedisStore(redis, { prefix, load: db.load, log, subscriber: redis.duplicate({ enableOfflineQueue: true }) })
    t.teardown(() => { store.close(); redis.disconnect() })
    await store.rebuild()
    return store
  }
  const a = await make()
  const b = await make()
  for (let i = 0; i < 20; i++) {
    const sid = id()
    t.equal(await b.isRevoked(id(), sid), false)
    await a.revoke([{ kind: 'sid', id: sid, until: Date.now() + 60_000 }])
    // Both instances share this test's event loop: let it read b's subscriber socket once.
    // (In production they are two processes and the message is already in b's socket
    // before a answers its client.)
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(await b.isRevoked(id(), sid), true, `revocation ${i}`)
  }
})

t.test('memory: the sweep drops expired entries, so the map never grows without bound', async (t) => {
  const store = createMemoryStore(async () => [], 20)
  t.teardown(() => store.close())
  const ids = Array.from({ length: 1000 }, () => id())
  await store.revoke(ids.map((i) => ({ kind: 'sid' as const, id: i, until: Date.now() + 30 })))
  t.equal(await store.isRevoked(id(), ids[0]), true)
  await sleep(120)
  for (const i of ids.slice(0, 5)) t.equal(await store.isRevoked(id(), i), false)
})

t.test('redis: entries carry a TTL, so Redis never grows without bound', async (t) => {
  await requireRedis(t)
  const redis = new Redis(REDIS_URL)
  const prefix = redisPrefix()
  const store = createRedisStore(redis, { prefix, load: async () => [], log })
  t.teardown(() => { store.close(); redis.disconnect() })
  await store.rebuild()
  const sid = id()
  await store.revoke([{ kind: 'sid', id: sid, until: Date.now() + 60_000 }])
  const ttl = await redis.pttl(`${prefix}sid:${sid}`)
  t.ok(ttl > 0 && ttl <= 60_000, `pttl ${ttl}`)
  await redis.del(`${prefix}sid:${sid}`, `${prefix}rebuilt`)
})

for (const replica of [false, true]) {
  t.test(`redis${replica ? ' with a local replica' : ''}: FLUSHALL and a restart lose nothing; an outage fails closed`, async (t) => {
    const server = await ownRedis(t)
    const redis = new Redis(server.url, {
      enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1000, retryStrategy: () => 50
    })
    redis.on('error', () => {}) // reconnects are expected here
    await new Promise((resolve) => redis.once('ready', resolve))
    const db = source()
    const subscriber = replica ? redis.duplicate({ enableOfflineQueue: true }) : undefined
    subscriber?.on('error', () => {})
    const store = createRedisStore(redis, { prefix: 'fault:', load: db.load, log, subscriber })
    t.teardown(() => { store.close(); redis.disconnect() })
    await store.rebuild()

    const sid = id()
    const entry: RevocationEntry = { kind: 'sid', id: sid, until: Date.now() + 60_000 }
    db.entries.push(entry) // the database is written first ...
    await store.revoke([entry]) // ... then the store

    await redis.flushall()
    t.equal(await store.isRevoked(id(), sid), true, 'after FLUSHALL: still revoked')

    await server.stop()
    // The outage is noticed as the connections drop; from then on: errors, never "not revoked".
    let outcome: unknown
    for (let i = 0; i < 100; i++) {
      try {
        t.equal(await store.isRevoked(id(), sid), true, 'until the outage is noticed, the answer is still right')
      } catch (err) {
        outcome = err
        break
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
  })
}

t.test('redis with a local replica: answers from memory while subscribed, heartbeats included', async (t) => {
  await requireRedis(t)
  const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, commandTimeout: 1000 })
  await new Promise((resolve) => redis.once('ready', resolve))
  const store = createRedisStore(redis, { prefix: redisPrefix(), load: async () => [], log, subscriber: redis.duplicate({ enableOfflineQueue: true }) })
  t.teardown(() => { store.close(); redis.disconnect() })
  await store.rebuild()
  // A synchronous boolean means the replica answered; a promise would mean a Redis read.
  t.equal(typeof store.isRevoked(id(), id()), 'boolean', 'in sync after the start')
  await sleep(2500) // two heartbeats
  t.equal(typeof store.isRevoked(id(), id()), 'boolean', 'still in sync: the heartbeats were answered')
})
