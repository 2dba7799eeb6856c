import fp from 'fastify-plugin'
import redis from '@fastify/redis'
import { Redis } from 'ioredis'

/**
 * Redis for the revocation store and rate limits, only when REDIS_URL is set. Commands fail
 * fast instead of queueing while the connection is down (no offline queue, 1 s command
 * timeout), so a protected route answers 503 within about 2 s; ioredis keeps reconnecting
 * in the background. At start the service waits until Redis answers.
 */
export default fp(async function redisConnection (fastify) {
  const url = fastify.config.redisUrl
  if (url === undefined) return
  const client = new Redis(url, {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    commandTimeout: 1000,
    connectTimeout: 1500,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(times * 100, 1000)
  })
  // One log line per outage, not one per reconnect attempt.
  let healthy = true
  client.on('error', (err: NodeJS.ErrnoException) => {
    if (!healthy) return
    healthy = false
    const message = 'redis connection lost; protected routes answer 503 until it is back'
    fastify.log.error({ code: err.code, msg: err.message }, message)
  })
  client.on('ready', () => {
    if (!healthy) fastify.log.info('redis connection restored')
    healthy = true
  })
  await fastify.register(redis, { client })
  // QUIT needs a live connection; during an outage just drop the socket.
  fastify.addHook('onClose', async () => {
    if (client.status !== 'ready') return client.disconnect()
    await client.quit().catch(() => client.disconnect())
  })
}, { name: 'redis', dependencies: ['config'] })
