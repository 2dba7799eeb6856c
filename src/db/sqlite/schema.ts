import { sqliteTable, text, integer, index, uniqueIndex } from 'drizzle-orm/sqlite-core'

// Times are epoch milliseconds (UTC); the repositories turn them into ISO strings.

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  username: text('username').notNull(),
  /** lower-cased username: uniqueness is case-insensitive, the display form is kept as written */
  usernameKey: text('username_key').notNull(),
  passwordHash: text('password_hash').notNull(),
  /**
   * Bumped by every password change. A login creates its session only if the version it
   * checked the password against is still current (in the INSERT itself), so a login that
   * raced a password change or a deletion never yields a session that outlives it.
   */
  credentialVersion: integer('credential_version').notNull().default(0),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
  /** space-separated role names ('admin' is the one role); read from here on every admin request */
  roles: text('roles').notNull().default(''),
  /** set by an admin: no login, and every session was revoked in the same request */
  disabledAt: integer('disabled_at'),
  /**
   * The TOTP secret, AES-256-GCM encrypted with MFA_ENCRYPTION_KEY (src/security/secret-box.ts).
   * Set by enrolment; required at login only once `mfaEnabled` (after a confirmed code).
   */
  mfaSecret: text('mfa_secret'),
  mfaEnabled: integer('mfa_enabled', { mode: 'boolean' }).notNull().default(false),
  /** the last TOTP time step accepted: a code is accepted only for a later step (each code once) */
  mfaLastStep: integer('mfa_last_step'),
  lastLoginAt: integer('last_login_at')
}, (t) => [uniqueIndex('users_username_key_unique').on(t.usernameKey)])

/** Recovery codes (SHA-256 hashes only), each usable once: `usedAt` is claimed by a conditional UPDATE. */
export const mfaRecoveryCodes = sqliteTable('mfa_recovery_codes', {
  codeHash: text('code_hash').primaryKey(),
  userId: text('user_id').notNull(),
  createdAt: integer('created_at').notNull(),
  usedAt: integer('used_at')
}, (t) => [index('mfa_recovery_codes_user_id_idx').on(t.userId)])

/**
 * The second step of a login with TOTP: the `mfa_token` (its SHA-256 hash), for one user and
 * the password version that step one checked, for 5 minutes and 5 wrong codes at most.
 */
export const mfaChallenges = sqliteTable('mfa_challenges', {
  tokenHash: text('token_hash').primaryKey(),
  userId: text('user_id').notNull(),
  credentialVersion: integer('credential_version').notNull(),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  failures: integer('failures').notNull().default(0),
  consumedAt: integer('consumed_at')
}, (t) => [index('mfa_challenges_expires_at_idx').on(t.expiresAt)])

/** Admin-issued password reset tokens (SHA-256 hashes only), single use, 900 s. */
export const passwordResetTokens = sqliteTable('password_reset_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  userId: text('user_id').notNull(),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at')
}, (t) => [
  index('password_reset_tokens_user_id_idx').on(t.userId),
  index('password_reset_tokens_expires_at_idx').on(t.expiresAt)
])

/**
 * One row per login. No foreign key to users on purpose: a deleted user's sessions stay
 * (revoked) until their access tokens have expired, so the revocation survives a restart.
 */
export const sessions = sqliteTable('sessions', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  createdAt: integer('created_at').notNull(),
  lastUsedAt: integer('last_used_at').notNull(),
  /** absolute end of the session: no refresh after this */
  expiresAt: integer('expires_at').notNull(),
  /**
   * The latest `exp` (epoch ms) of any access token issued in this session: a revocation of
   * the session must be kept until then, whatever ACCESS_TOKEN_TTL is after a restart.
   */
  accessExpiresAt: integer('access_expires_at').notNull().default(0),
  revokedAt: integer('revoked_at'),
  revokedReason: text('revoked_reason')
}, (t) => [
  index('sessions_user_id_idx').on(t.userId),
  index('sessions_revoked_at_idx').on(t.revokedAt),
  index('sessions_expires_at_idx').on(t.expiresAt)
])

/** Refresh tokens, stored only as SHA-256 hashes. A used one is kept to detect its reuse. */
export const refreshTokens = sqliteTable('refresh_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  sessionId: text('session_id').notNull().references(() => sessions.id, { onDelete: 'cascade' }),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at')
}, (t) => [index('refresh_tokens_session_id_idx').on(t.sessionId)])

/** Single access tokens revoked before their expiry (the session itself lives on). */
export const revokedTokens = sqliteTable('revoked_tokens', {
  jti: text('jti').primaryKey(),
  sessionId: text('session_id').notNull(),
  /** the token's own `exp`, in epoch ms: the entry is useless after it */
  expiresAt: integer('expires_at').notNull(),
  revokedAt: integer('revoked_at').notNull()
}, (t) => [
  index('revoked_tokens_expires_at_idx').on(t.expiresAt),
  // the per-session renewal limit counts a session's recent rows (plugins/app/sessions.ts)
  index('revoked_tokens_session_id_revoked_at_idx').on(t.sessionId, t.revokedAt)
])

/**
 * Every revocation, in commit order, written in the same transaction as the change it
 * records (a revoked session, a consumed or revoked access token). It is what the blocklist
 * is rebuilt from, and what each instance's replica reconciles with (rows after the last
 * `seq` it saw), so a revocation whose Redis message was lost still reaches every instance.
 * A row is useless once `until` (epoch ms: when the tokens it covers expire) has passed.
 */
export const revocationLog = sqliteTable('revocation_log', {
  seq: integer('seq').primaryKey({ autoIncrement: true }),
  kind: text('kind', { enum: ['jti', 'sid'] }).notNull(),
  targetId: text('target_id').notNull(),
  until: integer('until').notNull(),
  createdAt: integer('created_at').notNull()
}, (t) => [index('revocation_log_until_idx').on(t.until)])

/**
 * Security events (docs/audit.md), written only when AUDIT_LOG=table and pruned after
 * AUDIT_RETENTION_DAYS. No foreign key to users on purpose: a deleted user's events stay
 * (for operators) until pruned; nobody can read them through the API any more.
 * Never a password, a token, a hash, or the username typed on a failed login.
 */
export const auditEvents = sqliteTable('audit_events', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  event: text('event').notNull(),
  outcome: text('outcome').notNull(),
  userId: text('user_id'),
  sessionId: text('session_id'),
  ip: text('ip'),
  /** truncated to 256 characters */
  userAgent: text('user_agent'),
  requestId: text('request_id'),
  reason: text('reason'),
  sessionsRevoked: integer('sessions_revoked'),
  createdAt: integer('created_at').notNull(),
  /** the admin who acted (admin events); null otherwise */
  actorId: text('actor_id')
}, (t) => [
  // a user's events, newest first (GET /users/me/events); id breaks ties (it is the rowid, in every index)
  index('audit_events_user_id_created_at_idx').on(t.userId, t.createdAt),
  // pruning
  index('audit_events_created_at_idx').on(t.createdAt)
])
