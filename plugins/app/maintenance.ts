import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** Deletes rows that can no longer matter; runs at start and every 10 minutes. */
    pruneExpired (now?: number): Promise<{ sessions: number, revokedTokens: number, revocationLog: number }>
  }
}

const EVERY_MS = 10 * 60_000

export default fp(async function maintenance (fastify) {
  // A session matters until its refresh tokens expire, and until every access token it
  // issued has expired; a revocation until the tokens it covers have expired.
  fastify.decorate('pruneExpired', async (now = Date.now()) => {
    const sessions = await fastify.sessionsRepository.prune(now)
    const { revokedTokens, log: revocationLog } = await fastify.revocationsRepository.prune(now)
    if (sessions + revokedTokens + revocationLog > 0) {
      fastify.log.info({ event: 'maintenance.pruned', sessions, revokedTokens, revocationLog }, 'expired rows pruned')
    }
    return { sessions, revokedTokens, revocationLog }
  })

  const run = () => { fastify.pruneExpired().catch((err) => fastify.log.error({ err }, 'pruning failed')) }
  const timer = setInterval(run, EVERY_MS).unref()
  fastify.addHook('onReady', async () => { run() })
  fastify.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'maintenance', dependencies: ['config', 'sessions-repository', 'revocations-repository'] })
