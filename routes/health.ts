import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { StringEnum } from '../src/schemas/common'

const Check = StringEnum(['ok', 'down'])
const Health = (status: 'ok' | 'degraded', description: string) => Type.Object({
  status: StringEnum(['ok', 'degraded'], { examples: [status] }),
  checks: Type.Object({
    database: Check,
    revocation_store: Check,
    revocation_store_kind: StringEnum(['memory', 'redis'])
  })
}, { description })
const Live = Type.Object({ status: StringEnum(['ok']) }, { description: 'The process answers' })
const Ready = (status: 'ready' | 'not_ready', description: string) => Type.Object({
  status: StringEnum(['ready', 'not_ready'], { examples: [status] }),
  checks: Type.Object({
    database: Check,
    revocation_store: Check,
    revocation_replica: StringEnum(['trusted', 'catching_up', 'none'], {
      description: 'the Redis store\'s local replica: trusted, or catching up (reads then go to Redis); none in-process'
    }),
    draining: Type.Boolean({ description: 'a graceful shutdown has started' })
  })
}, { description })

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  const dependencies = async () => {
    const database = (await fastify.checkDatabase()) ? 'ok' as const : 'down' as const
    let store: 'ok' | 'down' = 'ok'
    try { await fastify.revocationStore.ping() } catch { store = 'down' }
    return { database, store }
  }

  fastify.get('/health', {
    schema: {
      operationId: 'health',
      tags: ['health'],
      summary: 'Dependencies: 200 when the database and the revocation store answer, 503 when one is down',
      response: {
        200: Health('ok', 'The database and the revocation store answer'),
        503: Health('degraded', 'A dependency is down: the checks say which')
      }
    }
  }, async (_request, reply) => {
    const { database, store } = await dependencies()
    const ok = database === 'ok' && store === 'ok'
    return reply.status(ok ? 200 : 503).send({
      status: ok ? 'ok' : 'degraded',
      checks: { database, revocation_store: store, revocation_store_kind: fastify.revocationStore.kind }
    })
  })

  fastify.get('/health/live', {
    schema: {
      operationId: 'healthLive',
      tags: ['health'],
      summary: 'Liveness: the process answers (restart it if this fails)',
      response: { 200: Live }
    }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/health/ready', {
    schema: {
      operationId: 'healthReady',
      tags: ['health'],
      summary: 'Readiness: 200 while this instance can answer correctly; 503 when a dependency is down or it is ' +
        'shutting down',
      description: 'Ready means: the database answers (its migrations were applied at start), the revocation ' +
        'store can answer (its replica is trusted, or Redis answers), and no graceful shutdown has started. On ' +
        'SIGTERM it turns 503 SHUTDOWN_DRAIN_MS before the listener closes.',
      response: {
        200: Ready('ready', 'This instance should receive traffic'),
        503: Ready('not_ready', 'A dependency is down, or a shutdown has begun: send traffic elsewhere')
      }
    }
  }, async (_request, reply) => {
    const { database, store } = await dependencies()
    const status = fastify.revocationStore.status()
    const replica = status.kind === 'memory'
      ? 'none' as const
      : status.trusted ? 'trusted' as const : 'catching_up' as const
    const draining = fastify.lifecycle.draining
    const ready = database === 'ok' && store === 'ok' && !draining
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not_ready',
      checks: { database, revocation_store: store, revocation_replica: replica, draining }
    })
  })
}

export default health
