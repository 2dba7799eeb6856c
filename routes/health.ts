import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('down')])
const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  checks: Type.Object({
    database: Check,
    revocation_store: Check,
    revocation_store_kind: Type.Union([Type.Literal('memory'), Type.Literal('redis')])
  })
})

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    schema: {
      operationId: 'health',
      tags: ['health'],
      summary: 'Liveness and dependencies (503 when one is down)',
      response: { 200: Health, 503: Health }
    }
  }, async (_request, reply) => {
    const database = (await fastify.checkDatabase()) ? 'ok' : 'down'
    let store: 'ok' | 'down' = 'ok'
    try { await fastify.revocationStore.ping() } catch { store = 'down' }
    const ok = database === 'ok' && store === 'ok'
    return reply.status(ok ? 200 : 503).send({
      status: ok ? 'ok' : 'degraded',
      checks: { database, revocation_store: store, revocation_store_kind: fastify.revocationStore.kind }
    })
  })
}

export default health
