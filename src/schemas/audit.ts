import { Type, type Static } from '@sinclair/typebox'
import { IsoTime, StringEnum } from './common'

/** One security event as GET /users/me/events shows it (docs/audit.md). Unknown fields are omitted. */
export const SecurityEvent = Type.Object({
  event: Type.String({
    description: 'what happened: login.success, login.failure, refresh.reuse, logout, logout.all, session.revoked, ' +
      'user.registered, user.renamed, user.password_changed, user.update_denied, user.deleted, login.mfa_required, ' +
      'mfa.*, password.rehashed, password.reset, admin.* (docs/audit.md)'
  }),
  outcome: StringEnum(['success', 'failure', 'denied'], { description: 'how it ended' }),
  created_at: IsoTime,
  session_id: Type.Optional(Type.String({ description: 'the session the event concerns' })),
  ip: Type.Optional(Type.String({ description: 'the client IP (after TRUST_PROXY)' })),
  user_agent: Type.Optional(Type.String({
    maxLength: 256,
    description: 'the User-Agent header, truncated to 256 characters'
  })),
  request_id: Type.Optional(Type.String({ description: 'the request id in the service\'s logs' })),
  reason: Type.Optional(Type.String({ description: 'why, for failures and denials (e.g. bad_credentials)' })),
  sessions_revoked: Type.Optional(Type.Integer({ minimum: 0, description: 'sessions the event revoked' })),
  actor_id: Type.Optional(Type.String({ description: 'the admin who acted, on admin.* events' }))
}, { title: 'SecurityEvent' })
export type SecurityEvent = Static<typeof SecurityEvent>

export const SecurityEventPage = Type.Object({
  events: Type.Array(SecurityEvent, { description: 'newest first' }),
  next: Type.Optional(Type.String({
    description: 'present when older events may follow: pass it as `before` for the next page'
  }))
}, { title: 'SecurityEventPage', description: 'A page of the user\'s security events, newest first' })

// Query values arrive as strings and the service coerces nothing (src/app.ts): the limit is
// a string of digits, read by the route.
export const SecurityEventQuery = Type.Object({
  limit: Type.Optional(Type.String({
    pattern: '^(100|[1-9][0-9]?)$',
    description: 'events per page, 1 to 100 (default 20)'
  })),
  before: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 64,
    pattern: '^[A-Za-z0-9_-]+$',
    description: 'an opaque cursor: the `next` of the previous page'
  }))
}, { additionalProperties: false })
