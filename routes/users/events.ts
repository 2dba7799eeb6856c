import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { BearerSecurity, errors } from '../../src/schemas/common'
import { SecurityEventPage, SecurityEventQuery, type SecurityEvent } from '../../src/schemas/audit'

import type { AuditCursor, AuditRecord } from '../../src/db/repositories'

const DEFAULT_LIMIT = 20

// The cursor is opaque to clients: base64url of "<created_at>.<id>" of the last event shown.
// Forging one gains nothing: the query is always limited to the caller's own events.
const encodeCursor = (r: AuditRecord) => Buffer.from(`${r.createdAt}.${r.id}`).toString('base64url')
function decodeCursor (raw: string): AuditCursor | undefined {
  const match = /^([0-9]{1,15})\.([0-9]{1,15})$/.exec(Buffer.from(raw, 'base64url').toString('latin1'))
  return match === null ? undefined : { createdAt: Number(match[1]), id: Number(match[2]) }
}

function view (r: AuditRecord): SecurityEvent {
  const e: SecurityEvent = {
    event: r.event,
    outcome: r.outcome as SecurityEvent['outcome'],
    created_at: new Date(r.createdAt).toISOString()
  }
  if (r.sessionId !== null) e.session_id = r.sessionId
  if (r.ip !== null) e.ip = r.ip
  if (r.userAgent !== null) e.user_agent = r.userAgent
  if (r.requestId !== null) e.request_id = r.requestId
  if (r.reason !== null) e.reason = r.reason
  if (r.sessionsRevoked !== null) e.sessions_revoked = r.sessionsRevoked
  if (r.actorId !== null) e.actor_id = r.actorId
  return e
}

const events: FastifyPluginAsyncTypebox = async (fastify) => {
  const { table } = fastify.config.audit

  fastify.get('/me/events', {
    schema: {
      operationId: 'listSecurityEvents',
      tags: ['users'],
      summary: 'The current user\'s recent security events (logins, logouts, password changes ...), newest first',
      description: 'Paginated by cursor: `limit` events per page (1-100, default 20); pass a page\'s `next` as ' +
        '`before` for the older ones. Kept for AUDIT_RETENTION_DAYS. ' +
          '404 when the service does not keep them (AUDIT_LOG=log).',
      security: BearerSecurity,
      querystring: SecurityEventQuery,
      response: { 200: SecurityEventPage, ...errors(400, 401, 404, 503) }
    }
  }, async (request, reply) => {
    const { sub } = request.auth!
    // A deleted user's events are kept until pruned, but nobody reads them: the folder's
    // autohooks refuse the token of a user that is gone.
    if (!table) return reply.notFound('Security events are not kept: the audit table is off (AUDIT_LOG=log)')
    const limit = request.query.limit === undefined ? DEFAULT_LIMIT : Number(request.query.limit)
    let before: AuditCursor | undefined
    if (request.query.before !== undefined) {
      before = decodeCursor(request.query.before)
      if (before === undefined) {
        return reply.badRequest('Invalid cursor: pass the `next` of a previous page as `before`')
      }
    }
    // One more than asked: whether another page follows, without a count.
    const rows = await fastify.auditRepository.listForUser(sub, limit + 1, before)
    const page = rows.slice(0, limit)
    if (rows.length <= limit) return { events: page.map(view) }
    return { events: page.map(view), next: encodeCursor(page[page.length - 1]) }
  })
}

export default events
