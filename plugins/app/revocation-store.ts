import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { RevocationStore } from '../../src/revocation/contract'
import { createMemoryStore } from '../../src/revocation/memory-store'
import { createRedisStore } from '../../src/revocation/redis-store'

declare module 'fastify' {
  interface FastifyInstance {
    revocationStore: RevocationStore
  }
}

/** A pub/sub connection with the main one's settings, except that it may queue its SUBSCRIBE. */
function subscriberFor (redis: Redis): Redis {
  const subscriber = redis.duplicate({ enableOfflineQueue: true, lazyConnect: false })
  subscriber.on('error', () => {}) // the main connection already logs outages
  return subscriber
}

/**
 * The blocklist (src/revocation/): in-process memory by default, Redis with a local replica
 * per instance when REDIS_URL is set. Either way it is loaded from the database's
 * revocation log at start.
 */
export default fp(async function revocationStore (fastify) {
  const log = fastify.revocationsRepository
  const store = fastify.hasDecorator('redis')
    ? createRedisStore(fastify.redis, {
      prefix: fastify.config.redisPrefix,
      log,
      logger: fastify.log,
      subscriber: subscriberFor(fastify.redis)
    })
    : createMemoryStore(log)
  await store.rebuild()

  fastify.decorate('revocationStore', store)
  fastify.metrics.setSource('revocationStore', () => store.status())
  fastify.addHook('onClose', async () => { store.close() })
}, { name: 'revocation-store', dependencies: ['config', 'redis', 'repositories', 'metrics'] })
