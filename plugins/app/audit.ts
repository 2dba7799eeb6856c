import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import { Counter } from 'prom-client'
import type { RequestContext } from '../../src/request-context'
import { loggable } from '../../src/db/errors'

/**
 * The security events, each with its fixed outcome, log level and message. docs/audit.md
 * says when each is emitted; tests and operators grep these names: never rename one.
 */

interface EventShape { outcome: 'success' | 'failure' | 'denied', level: 'info' | 'warn', message: string }
const EVENTS = {
  'user.registered': { outcome: 'success', level: 'info', message: 'user registered' },
  'login.success': { outcome: 'success', level: 'info', message: 'login succeeded' },
  'login.failure': { outcome: 'failure', level: 'info', message: 'login failed' },
  'refresh.reuse': { outcome: 'denied', level: 'warn', message: 'refresh token reuse: session revoked' },
  logout: { outcome: 'success', level: 'info', message: 'logged out' },
  'logout.all': { outcome: 'success', level: 'info', message: 'logged out everywhere' },
  'session.revoked': { outcome: 'success', level: 'info', message: 'session revoked' },
  'user.renamed': { outcome: 'success', level: 'info', message: 'username changed' },
  'user.password_changed': { outcome: 'success', level: 'info', message: 'password changed' },
  'user.update_denied': { outcome: 'denied', level: 'info', message: 'wrong current password' },
  'user.deleted': { outcome: 'success', level: 'info', message: 'account deleted' },
  'login.mfa_required': { outcome: 'success', level: 'info', message: 'password accepted: second factor required' },
  'mfa.enrolment_started': { outcome: 'success', level: 'info', message: 'two-factor enrolment started' },
  'mfa.enabled': { outcome: 'success', level: 'info', message: 'two-factor authentication turned on' },
  'mfa.disabled': { outcome: 'success', level: 'info', message: 'two-factor authentication turned off' },
  'mfa.denied': { outcome: 'denied', level: 'info', message: 'wrong password or code for a two-factor change' },
  'mfa.recovery_code_used': { outcome: 'success', level: 'warn', message: 'recovery code used to log in' },
  'password.rehashed': { outcome: 'success', level: 'info', message: 'password hash upgraded to the current cost' },
  'password.reset': { outcome: 'success', level: 'info', message: 'password reset with an admin-issued token' },
  'admin.user_disabled': { outcome: 'success', level: 'warn', message: 'admin disabled the account' },
  'admin.user_enabled': { outcome: 'success', level: 'info', message: 'admin enabled the account' },
  'admin.user_logged_out': { outcome: 'success', level: 'warn', message: 'admin revoked every session' },
  'admin.mfa_removed': { outcome: 'success', level: 'warn', message: 'admin removed two-factor authentication' },
  'admin.password_reset_issued': { outcome: 'success', level: 'warn', message: 'admin issued a password reset token' },
  'admin.user_deleted': { outcome: 'success', level: 'warn', message: 'admin deleted the account' }
} as const satisfies Record<string, EventShape>

export type AuditEventName = keyof typeof EVENTS
export type AuditOutcome = (typeof EVENTS)[AuditEventName]['outcome']
export const AUDIT_EVENT_NAMES = Object.keys(EVENTS) as AuditEventName[]

/** What happened; who asked, from where, comes from the request's context. */
export interface AuditEvent {
  event: AuditEventName
  /** the account it concerns; absent for a failed login with an unknown username */
  userId?: string
  /** the session it concerns; defaults to the session of the access token that asked (ctx.sessionId) */
  sessionId?: string
  /** a short machine-readable word (e.g. 'bad_credentials'), never user input */
  reason?: string
  /** how many sessions the event revoked, where it revokes sessions */
  sessionsRevoked?: number
  /** the admin who acted, on admin.* events (the account concerned is `userId`) */
  actorId?: string
}

/** User-Agent headers are client-chosen: kept to this many characters. */
export const USER_AGENT_MAX = 256

export interface Audit {
  /**
   * Logs the event (on the request's logger, so with its `reqId`) and, with AUDIT_LOG=table,
   * writes it to audit_events. Never throws: a failed write is logged and counted
   * (auth_audit_write_failures_total) and the request goes on.
   */
  record (event: AuditEvent, ctx: RequestContext): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: Audit
  }
}

export default fp(async function audit (fastify) {
  const { table } = fastify.config.audit
  const repo = fastify.auditRepository
  const writeFailures = new Counter({
    name: 'auth_audit_write_failures_total',
    help: 'security events that could not be written to audit_events (AUDIT_LOG=table); each is still in the log',
    registers: [fastify.metrics.registry]
  })

  const service: Audit = {
    async record (e, ctx) {
      const spec = EVENTS[e.event]
      // The stable fields first, always present (null when unknown), then the optional ones.
      // `reqId` is bound to the request's logger already: it is not repeated here.
      const fields = {
        event: e.event,
        outcome: spec.outcome,
        userId: e.userId ?? null,
        sessionId: e.sessionId ?? ctx.sessionId ?? null,
        ip: ctx.ip ?? null,
        userAgent: ctx.userAgent === undefined ? null : ctx.userAgent.slice(0, USER_AGENT_MAX),
        ...(e.reason === undefined ? {} : { reason: e.reason }),
        ...(e.sessionsRevoked === undefined ? {} : { sessionsRevoked: e.sessionsRevoked }),
        ...(e.actorId === undefined ? {} : { actorId: e.actorId })
      }
      ctx.log[spec.level](fields, spec.message)
      if (!table) return
      try {
        await repo.insert({
          ...fields,
          requestId: ctx.requestId ?? null,
          reason: e.reason ?? null,
          sessionsRevoked: e.sessionsRevoked ?? null,
          actorId: e.actorId ?? null,
          createdAt: Date.now()
        })
      } catch (err) {
        writeFailures.inc()
        // Its own event name, so that counting an event's lines never counts this one; without
        // the statement's parameters (loggable): the event's own line, just above, has them.
        const line = { ...loggable(err as FastifyError), event: 'audit.write_failed', failedEvent: e.event }
        ctx.log.error(line, 'security event not written to audit_events')
      }
    }
  }
  fastify.decorate('audit', service)
}, { name: 'audit', dependencies: ['config', 'repositories', 'metrics'] })
