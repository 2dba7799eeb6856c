import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** Deletes rows that can no longer matter; runs at start and every 10 minutes. */
    pruneExpired (now?: number): Promise<{ sessions: number, revokedTokens: number }>
  }
}

const EVERY_MS = 10 * 60_000

export default fp(async function maintenance (fastify) {
  const ttlMs = fastify.config.accessTokenTtl * 1000

  // A session matters until its refresh tokens expire, and once revoked until every access
  // token it issued has expired (one access-token lifetime): only then is its row useless.
  fastify.decorate('pruneExpired', async (now = Date.now()) => {
    const sessions = await fastify.sessionsRepository.prune(now, now - ttlMs)
    const revokedTokens = await fastify.revocationsRepository.prune(now)
    if (sessions + revokedTokens > 0) fastify.log.info({ event: 'maintenance.pruned', sessions, revokedTokens }, 'expired rows pruned')
    return { sessions, revokedTokens }
  })

  const run = () => { fastify.pruneExpired().catch((err) => fastify.log.error({ err }, 'pruning failed')) }
  const timer = setInterval(run, EVERY_MS).unref()
  fastify.addHook('onReady', async () => { run() })
  fastify.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'maintenance', dependencies: ['config', 'sessions-repository', 'revocations-repository'] })
