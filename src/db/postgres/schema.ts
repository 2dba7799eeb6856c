import { pgTable, text, integer, bigint, boolean, index, uniqueIndex } from 'drizzle-orm/pg-core'

// The same tables, columns and indexes as ../sqlite/schema.ts, which documents what each
// one is for. Times are epoch milliseconds: bigint in PostgreSQL, read as JS numbers
// (mode 'number': exact up to 2^53 ms, far past any date we store).
const ms = (name: string) => bigint(name, { mode: 'number' })

export const users = pgTable('users', {
  id: text('id').primaryKey(),
  username: text('username').notNull(),
  /** lower-cased username (in JS, as on SQLite): uniqueness is case-insensitive */
  usernameKey: text('username_key').notNull(),
  passwordHash: text('password_hash').notNull(),
  credentialVersion: integer('credential_version').notNull().default(0),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at').notNull(),
  roles: text('roles').notNull().default(''),
  disabledAt: ms('disabled_at'),
  mfaSecret: text('mfa_secret'),
  mfaEnabled: boolean('mfa_enabled').notNull().default(false),
  mfaLastStep: bigint('mfa_last_step', { mode: 'number' }),
  lastLoginAt: ms('last_login_at')
}, (t) => [uniqueIndex('users_username_key_unique').on(t.usernameKey)])

export const mfaRecoveryCodes = pgTable('mfa_recovery_codes', {
  codeHash: text('code_hash').primaryKey(),
  userId: text('user_id').notNull(),
  createdAt: ms('created_at').notNull(),
  usedAt: ms('used_at')
}, (t) => [index('mfa_recovery_codes_user_id_idx').on(t.userId)])

export const mfaChallenges = pgTable('mfa_challenges', {
  tokenHash: text('token_hash').primaryKey(),
  userId: text('user_id').notNull(),
  credentialVersion: integer('credential_version').notNull(),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
  failures: integer('failures').notNull().default(0),
  consumedAt: ms('consumed_at')
}, (t) => [index('mfa_challenges_expires_at_idx').on(t.expiresAt)])

export const passwordResetTokens = pgTable('password_reset_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  userId: text('user_id').notNull(),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
  usedAt: ms('used_at')
}, (t) => [
  index('password_reset_tokens_user_id_idx').on(t.userId),
  index('password_reset_tokens_expires_at_idx').on(t.expiresAt)
])

export const sessions = pgTable('sessions', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  createdAt: ms('created_at').notNull(),
  lastUsedAt: ms('last_used_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
  accessExpiresAt: ms('access_expires_at').notNull().default(0),
  revokedAt: ms('revoked_at'),
  revokedReason: text('revoked_reason')
}, (t) => [
  index('sessions_user_id_idx').on(t.userId),
  index('sessions_revoked_at_idx').on(t.revokedAt),
  index('sessions_expires_at_idx').on(t.expiresAt)
])

export const refreshTokens = pgTable('refresh_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  sessionId: text('session_id').notNull().references(() => sessions.id, { onDelete: 'cascade' }),
  createdAt: ms('created_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
  usedAt: ms('used_at')
}, (t) => [index('refresh_tokens_session_id_idx').on(t.sessionId)])

export const revokedTokens = pgTable('revoked_tokens', {
  jti: text('jti').primaryKey(),
  sessionId: text('session_id').notNull(),
  expiresAt: ms('expires_at').notNull(),
  revokedAt: ms('revoked_at').notNull()
}, (t) => [
  index('revoked_tokens_expires_at_idx').on(t.expiresAt),
  // the per-session renewal limit counts a session's recent rows (plugins/app/sessions.ts)
  index('revoked_tokens_session_id_revoked_at_idx').on(t.sessionId, t.revokedAt)
])

/**
 * An identity column hands out `seq` at INSERT, not at COMMIT: without care a later seq
 * could become visible before an earlier one. Every append takes one advisory lock first
 * (src/db/postgres/revocation-log.ts), so here too rows commit in `seq` order.
 */
export const revocationLog = pgTable('revocation_log', {
  seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  kind: text('kind', { enum: ['jti', 'sid'] }).notNull(),
  targetId: text('target_id').notNull(),
  until: ms('until').notNull(),
  createdAt: ms('created_at').notNull()
}, (t) => [index('revocation_log_until_idx').on(t.until)])

export const auditEvents = pgTable('audit_events', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  event: text('event').notNull(),
  outcome: text('outcome').notNull(),
  userId: text('user_id'),
  sessionId: text('session_id'),
  ip: text('ip'),
  userAgent: text('user_agent'),
  requestId: text('request_id'),
  reason: text('reason'),
  sessionsRevoked: integer('sessions_revoked'),
  createdAt: ms('created_at').notNull(),
  actorId: text('actor_id')
}, (t) => [
  // id in the index too: PostgreSQL's indexes do not carry it implicitly, and pages sort by it
  index('audit_events_user_id_created_at_idx').on(t.userId, t.createdAt, t.id),
  index('audit_events_created_at_idx').on(t.createdAt)
])
