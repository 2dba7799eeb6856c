import fp from 'fastify-plugin'

/** rows deleted, per table */
export interface Pruned {
  sessions: number
  revokedTokens: number
  revocationLog: number
  auditEvents: number
  mfaChallenges: number
  resetTokens: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Deletes rows that can no longer matter; runs at start and every 10 minutes. */
    pruneExpired (now?: number): Promise<Pruned>
  }
}

const EVERY_MS = 10 * 60_000

export default fp(async function maintenance (fastify) {
  const auditRetentionMs = fastify.config.audit.retentionDays * 86_400_000
  // A session matters until its refresh tokens expire, and until every access token it
  // issued has expired; a revocation until the tokens it covers have expired; a security
  // event for AUDIT_RETENTION_DAYS (pruned with AUDIT_LOG=log too: rows written before stay no longer);
  // an mfa challenge or a reset token until it expires (refused after that, used or not).
  fastify.decorate('pruneExpired', async (now = Date.now()) => {
    const sessions = await fastify.sessionsRepository.prune(now)
    const { revokedTokens, log: revocationLog } = await fastify.revocationsRepository.prune(now)
    const auditEvents = await fastify.auditRepository.prune(now - auditRetentionMs)
    const { mfaChallenges, resetTokens } = await fastify.accountsRepository.prune(now)
    const counts = { sessions, revokedTokens, revocationLog, auditEvents, mfaChallenges, resetTokens }
    if (Object.values(counts).some((n) => n > 0)) {
      fastify.log.info({ event: 'maintenance.pruned', ...counts }, 'expired rows pruned')
    }
    return counts
  })

  const run = () => { fastify.pruneExpired().catch((err) => fastify.log.error({ err }, 'pruning failed')) }
  const timer = setInterval(run, EVERY_MS).unref()
  fastify.addHook('onReady', async () => { run() })
  fastify.addHook('onClose', async () => { clearInterval(timer) })
}, {
  name: 'maintenance',
  dependencies: ['config', 'repositories']
})
