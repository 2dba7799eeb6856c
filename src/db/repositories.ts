import type { RevocationEntry, RevocationLog, Revoked } from '../revocation/contract'

/**
 * What the application asks of the database, whatever the dialect. Each dialect implements
 * these in src/db/<dialect>/*-repository.ts; plugins/app/repositories.ts picks one by
 * `config.database.kind`, so routes and app plugins never learn which it is.
 */

export interface UserRecord {
  id: string
  username: string
  passwordHash: string
  /** bumped by every password change (see users.credentialVersion in sqlite/schema.ts) */
  credentialVersion: number
  createdAt: number
  updatedAt: number
  /** disabled by an admin: a right password gets 403, and no session */
  disabled: boolean
  /** TOTP is required at login */
  mfaEnabled: boolean
}

/** What the API shows of a user: no password hash. */
export type UserProfile = Omit<UserRecord, 'passwordHash' | 'credentialVersion' | 'disabled' | 'mfaEnabled'>

/** Why a password change was not made: nothing was written. */
export type PasswordChangeRefused = 'gone' | 'stale' | 'session_revoked'

/**
 * The 000 seed's renewal of an access token: the presented token (jti) consumed, and the
 * session's access expiry raised to the successor's `accessExpiresAt`, only if the session
 * is live and the token was not consumed already.
 */
export interface Renewal {
  jti: string
  sessionId: string
  /** the presented token's exp (epoch ms): its revocation lasts until then */
  tokenExpiresAt: number
  accessExpiresAt: number
  now: number
}

/** A password change (and maybe a rename), made only if the credentials checked are still current. */
export interface PasswordChange {
  id: string
  passwordHash: string
  username?: string
  expectedVersion: number
  sessionId: string
  now: number
  /** consumed in the same transaction (compat PUT /user): see UsersRepository.rename */
  renewal?: Renewal
}

/** Data access for accounts. */
export interface UsersRepository {
  create (username: string, passwordHash: string): Promise<UserRecord>
  findById (id: string): Promise<UserRecord | undefined>
  /**
   * The profile, from a per-process cache (PROFILE_CACHE_MS) in front of the database:
   * the hot path (GET /users/me) then costs no query. Changes made by this process are
   * seen at once; changes made by another instance within PROFILE_CACHE_MS. Never used
   * for a decision that needs the password hash.
   */
  findProfile (id: string): Promise<UserProfile | undefined>
  findByUsername (username: string): Promise<UserRecord | undefined>
  /**
   * A new username. Throws UsernameTakenError; returns undefined when the user is gone.
   * With `renewal` (compat PUT /user, whose token renews on use), the token is consumed in
   * the same transaction: when it cannot be (another request consumed it first, or the
   * session was revoked), nothing is written and InvalidTokenError is thrown, so of
   * parallel requests with one token only the one that consumed it changes anything. The
   * consumed token's revocation is logged; the caller publishes it.
   */
  rename (id: string, username: string, renewal?: Renewal): Promise<UserRecord | undefined>
  /**
   * One transaction: the new hash (and username, if given), the version bumped, and every
   * other session revoked. Made only if the password checked (`expectedVersion`) is still
   * current and the session asking (`sessionId`) is still live; otherwise nothing is written.
   * Throws UsernameTakenError, and InvalidTokenError for a `renewal` that cannot be consumed
   * (as rename).
   */
  changePassword (c: PasswordChange): Promise<{ user: UserRecord, revoked: Revoked } | PasswordChangeRefused>
  /** One transaction: the account deleted and every session revoked. undefined: no such user. */
  delete (id: string, now: number): Promise<Revoked | undefined>
}

export interface SessionRecord {
  id: string
  userId: string
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  revokedAt: number | null
}

export type RotateResult =
  | { status: 'rotated', session: SessionRecord }
  /** the token was already used: the caller must revoke the session */
  | { status: 'reused', sessionId: string, userId: string }
  | { status: 'invalid' }

export interface NewSession {
  id: string
  userId: string
  /** the password version the login checked: the session is created only if it is still current */
  credentialVersion: number
  now: number
  expiresAt: number
  /** the `exp` (epoch ms) of the first access token */
  accessExpiresAt: number
}

/**
 * Data access for sessions and their refresh tokens (hashes only). Every revocation is
 * logged in the same transaction (src/db/<dialect>/revocation-log.ts) and answered as the
 * entries the blocklist must publish: a session revoked earlier is answered too, so that
 * repeating a revocation whose publish was lost still reaches every instance.
 */
export interface SessionsRepository {
  /** false (nothing written): the user is gone or changed its password since the check. */
  create (s: NewSession, refreshHash: string): Promise<boolean>
  /**
   * One transaction: the old hash is marked used and the new one stored, and the session's
   * access expiry raised to `accessExpiresAt`, or nothing happens. Of parallel rotations of
   * one token (on any instance), one is 'rotated' and the others see it used ('reused').
   * 'invalid' too when a revocation of the session commits first: a session's revocation
   * (whose entry lasts until its access expiry, read under the row lock) then always covers
   * every access token the session issued.
   */
  rotate (oldHash: string, newHash: string, now: number, accessExpiresAt: number): Promise<RotateResult>
  /**
   * The 000 seed's renewal, in one transaction: consumes the presented token (its jti) and
   * extends the session's access expiry, only if the session is live and the token was not
   * consumed already. null: it was (at most one renewal per token succeeds).
   */
  renew (r: Renewal): Promise<RevocationEntry[] | null>
  findActive (id: string, now: number): Promise<SessionRecord | undefined>
  listActive (userId: string, now: number): Promise<SessionRecord[]>
  /** Revokes the session; [] when there is no such session. */
  revoke (id: string, reason: string, now: number): Promise<Revoked>
  /** Revokes every session of the user except `exceptId`. */
  revokeAllOfUser (userId: string, reason: string, now: number, exceptId?: string): Promise<Revoked>
  /** Deletes sessions that can no longer matter: past their refresh and access expiry. */
  prune (now: number): Promise<number>
}

/**
 * Data access for the revocation log (what the blocklist is loaded and reconciled from) and
 * for single revoked access tokens (by jti), each kept until the token's own expiry.
 */
export interface RevocationsRepository extends RevocationLog {
  /**
   * The session's access tokens revoked (renewed, mostly) since `since`: how many, and when
   * the earliest of them was. Bounds what one session can add to the blocklist.
   */
  revokedSince (sessionId: string, since: number): Promise<{ count: number, earliest: number | null }>
  prune (now: number): Promise<{ revokedTokens: number, log: number }>
}

/** One security event as stored in audit_events (docs/audit.md has every field). */
export interface AuditRecord {
  id: number
  event: string
  outcome: string
  userId: string | null
  sessionId: string | null
  ip: string | null
  userAgent: string | null
  requestId: string | null
  reason: string | null
  sessionsRevoked: number | null
  createdAt: number
  /** the admin who acted (admin events), else null */
  actorId: string | null
}

export type NewAuditRecord = Omit<AuditRecord, 'id'>

/** Where a page of a user's events starts: strictly older than this event (keyset pagination). */
export interface AuditCursor {
  createdAt: number
  id: number
}

/** Data access for audit_events (written only when AUDIT_LOG=table). */
export interface AuditRepository {
  insert (e: NewAuditRecord): Promise<void>
  /** The user's events, newest first (created_at, then id), at most `limit`, older than `before` when given. */
  listForUser (userId: string, limit: number, before?: AuditCursor): Promise<AuditRecord[]>
  /** Deletes the events created before `olderThan` (epoch ms); answers how many. */
  prune (olderThan: number): Promise<number>
}

/** Uniqueness of usernames is case-insensitive: both dialects store and compare this key. */
export const usernameKey = (username: string) => username.toLowerCase()

/** What an admin sees of an account (AdminUser). */
export interface AccountRecord {
  id: string
  username: string
  /** lower-cased username: the search order and the page cursor */
  usernameKey: string
  createdAt: number
  updatedAt: number
  roles: string[]
  disabled: boolean
  mfaEnabled: boolean
  lastLoginAt: number | null
}

/** A user's TOTP state: the sealed secret (pending or enabled) and the last step accepted. */
export interface MfaState {
  sealedSecret: string | null
  enabled: boolean
  lastStep: number | null
}

export interface MfaConfirmation {
  userId: string
  /** the step of the code that confirmed: it counts as used */
  step: number
  recoveryCodeHashes: string[]
  /** the session that confirmed: every other one is revoked */
  sessionId: string
  now: number
}

export interface NewMfaChallenge {
  tokenHash: string
  userId: string
  /** the password version step one checked: the session is created only if it is still current */
  credentialVersion: number
  now: number
  expiresAt: number
}

export interface LiveMfaChallenge {
  userId: string
  credentialVersion: number
  failures: number
}

/** A second factor presented with an mfa_token: the TOTP step its code matched, or a recovery code's hash. */
export type MfaProof = { step: number } | { recoveryCodeHash: string }

/**
 * Data access for the account features of issue 18: roles, disabling, TOTP (secrets sealed,
 * recovery codes and mfa tokens hashed), admin-issued password resets, and what a login
 * writes besides its session (last_login_at, a hash at a higher cost). Every "once" here (a
 * TOTP step, a recovery code, an mfa token, a reset token) is a conditional write: of racing
 * requests on any instance, one changes the row and the others find it changed.
 */
export interface AccountsRepository {
  find (id: string): Promise<AccountRecord | undefined>
  /** usernames starting with `prefix` (case-insensitively), in username order, after `afterKey` */
  search (prefix: string, limit: number, afterKey?: string): Promise<AccountRecord[]>
  /** false: no such user. Idempotent. */
  setRole (username: string, role: string, granted: boolean): Promise<boolean>
  /** The account afterwards; undefined: no such user. A disabled account gets no new session (sessions `create`). */
  setDisabled (id: string, disabled: boolean, now: number): Promise<AccountRecord | undefined>
  /**
   * After a password was verified: last_login_at (when a session started), and the new hash when the stored one had
   * a lower
   * cost, written only if the password is still the one checked (`expectedVersion`, same
   * hash): a password change racing it wins. Nothing is revoked.
   */
  recordLogin (u: { id: string, lastLoginAt?: number, rehash?: { from: string, to: string, expectedVersion: number } }):
  Promise<void>

  mfaState (userId: string): Promise<MfaState | undefined>
  /** A new pending enrolment (replacing a pending one). 'enabled': TOTP is on already; nothing written. */
  setPendingMfa (userId: string, sealedSecret: string): Promise<'ok' | 'enabled' | 'gone'>
  /**
   * One transaction: TOTP on (if it was pending), the step used, the recovery codes replaced,
   * the password version bumped (a login that checked the password before this gets no
   * session), and every other session revoked. 'nothing': no pending enrolment.
   */
  confirmMfa (c: MfaConfirmation): Promise<Revoked | 'nothing'>
  /** TOTP off, secret and recovery codes deleted. false: it was not on (nor pending). */
  disableMfa (userId: string): Promise<boolean>
  /** Claims a TOTP step (later than the last one accepted) or a recovery code, once. */
  useMfaProof (userId: string, proof: MfaProof, now: number): Promise<boolean>

  createChallenge (c: NewMfaChallenge): Promise<void>
  /** live: not consumed, not expired, fewer than `maxFailures` wrong codes */
  findChallenge (tokenHash: string, now: number, maxFailures: number): Promise<LiveMfaChallenge | undefined>
  /** one more wrong code on the challenge */
  failChallenge (tokenHash: string): Promise<void>
  /**
   * One transaction: the challenge consumed (if still live) and the proof claimed, or neither.
   * 'ok', 'used' (the proof was used already: the challenge stays), 'invalid' (the challenge is not live).
   */
  completeChallenge (tokenHash: string, proof: MfaProof, now: number, maxFailures: number):
  Promise<'ok' | 'used' | 'invalid'>

  /** A new reset token (the user's earlier unused ones deleted). false: no such user. */
  createResetToken (r: { tokenHash: string, userId: string, now: number, expiresAt: number }): Promise<boolean>
  /** true when the token is unused and unexpired (a cheap check before hashing the new password) */
  resetTokenLive (tokenHash: string, now: number): Promise<boolean>
  /**
   * One transaction: the token claimed (unused, unexpired), the password set, its version
   * bumped and every session revoked. null: the token was not live (or its user is gone).
   */
  resetPassword (tokenHash: string, passwordHash: string, now: number): Promise<{
    userId: string,
    revoked: Revoked
  } | null>

  /** Deletes expired mfa challenges and reset tokens (used or not: past expiry neither matters); rows deleted. */
  prune (now: number): Promise<{ mfaChallenges: number, resetTokens: number }>
}
