import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** Where the process is in its life: readiness turns 503 once draining starts. */
    lifecycle: { draining: boolean }
  }
}

/**
 * Set by src/server.ts when a graceful shutdown starts, SHUTDOWN_DRAIN_MS before the
 * listener closes: GET /health/ready answers 503 meanwhile, so a load balancer stops
 * sending new requests while the old ones finish.
 */
export default fp(async function lifecycle (fastify) {
  fastify.decorate('lifecycle', { draining: false })
}, { name: 'lifecycle' })
