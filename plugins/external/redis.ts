import fp from 'fastify-plugin'
import redis from '@fastify/redis'

/**
 * Redis for the revocation store, only when REDIS_URL is set. Commands fail fast instead of
 * queueing while the connection is down (no offline queue, 1 s command timeout), so a
 * protected route answers 503 within about 2 s; ioredis keeps reconnecting in the background.
 */
export default fp(async function redisConnection (fastify) {
  const url = fastify.config.redisUrl
  if (url === undefined) return
  await fastify.register(redis, {
    url,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    commandTimeout: 1000,
    connectTimeout: 1500,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(times * 100, 1000)
  })
  // One log line per outage, not one per reconnect attempt.
  let healthy = true
  fastify.redis.on('error', (err: NodeJS.ErrnoException) => {
    if (!healthy) return
    healthy = false
    fastify.log.error({ code: err.code, msg: err.message }, 'redis connection lost; protected routes answer 503 until it is back')
  })
  fastify.redis.on('ready', () => {
    if (!healthy) fastify.log.info('redis connection restored')
    healthy = true
  })
}, { name: 'redis', dependencies: ['config'] })
