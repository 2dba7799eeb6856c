import t from 'tap'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { REDIS_URL, redisPrefix, requireRedis, waitFor } from '../helper'
import { commandReader, startRedisProxy } from './redis-proxy'

// The fault tests are only as good as their proxy: it is checked here against a real Redis.

t.test('command names are read whatever the chunking', async (t) => {
  const wire = Buffer.from('*3\r\n$3\r\nSET\r\n$5\r\nk\r\nv1\r\n$1\r\nx\r\n*1\r\n$4\r\nPING\r\n*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n')
  const whole: string[] = []
  commandReader((n) => whole.push(n))(wire)
  t.same(whole, ['SET', 'PING', 'MGET'], 'pipelined in one chunk (a value may hold CRLF)')
  const byByte: string[] = []
  const read = commandReader((n) => byByte.push(n))
  for (const byte of wire) read(Buffer.from([byte]))
  t.same(byByte, ['SET', 'PING', 'MGET'], 'split at every byte')
  const args: string[][] = []
  commandReader((_n, a) => args.push(a))(wire)
  t.same(args, [['k\r\nv1', 'x'], [], ['a', 'b', 'c']], 'and their arguments (a CRLF inside one included)')
})

t.test('a proxy in front of Redis', async (t) => {
  await requireRedis(t)
  const proxy = await startRedisProxy({ port: Number(new URL(REDIS_URL).port) })
  t.teardown(() => proxy.close())
  const prefix = redisPrefix()
  const direct = new Redis(REDIS_URL)
  const client = new Redis(proxy.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
  const subscriber = new Redis(proxy.url)
  t.teardown(() => { direct.disconnect(); client.disconnect(); subscriber.disconnect() })

  await client.set(`${prefix}a`, '1')
  t.equal(await direct.get(`${prefix}a`), '1', 'forwards')
  const before = proxy.count('mget')
  await client.mget(`${prefix}a`, `${prefix}b`)
  t.equal(proxy.count('MGET') - before, 1, 'counts commands by name')

  await subscriber.subscribe(`${prefix}ch`)
  const message = once(subscriber, 'message')
  await direct.publish(`${prefix}ch`, 'hello')
  t.same((await message).slice(0, 2), [`${prefix}ch`, 'hello'], 'carries a second connection (pub/sub) at once')

  proxy.stall()
  const sets = proxy.count('SET')
  const stalled = client.set(`${prefix}s`, '1')
  await waitFor(async () => proxy.count('SET') > sets) // the proxy holds it
  t.equal(await direct.get(`${prefix}s`), null, 'stalled: nothing reaches Redis')
  proxy.resume()
  t.equal(await stalled, 'OK', 'resumed: the kept command goes through, on the same connection')
  t.equal(await direct.get(`${prefix}s`), '1')

  const asked = proxy.watch(`${prefix}w`)
  await client.mget(`${prefix}w`, `${prefix}other`)
  await client.get(`${prefix}other`)
  t.equal(asked(), 1, 'counts the commands that carry a text')

  proxy.cutOn(`${prefix}cut`, { unless: 'MGET' })
  t.same(await client.mget(`${prefix}cut`), [null], 'a read that carries the text goes through')
  // A write beside a read, in one pipeline (one chunk): the read does not spare it.
  await client.pipeline().mget(`${prefix}cut`).set(`${prefix}cut`, '1').exec().catch(() => {})
  t.equal(await direct.get(`${prefix}cut`), null, 'the write that carries the text never reaches Redis')
  t.not(client.status, 'ready', 'its connection was cut')
  t.equal(await subscriber.ping(), 'PONG', 'other connections live on')
})
