/**
 * The service's domain errors, each carrying the HTTP status it answers with. The error
 * handlers (plugins/app/http.ts and the compat adapters) map by `statusCode` and
 * `retryAfter` alone, so they never need to know where an error came from.
 */

/** 401: a login whose username or password is wrong (one answer for both). */
export class InvalidCredentialsError extends Error {
  readonly statusCode = 401
  constructor (message = 'Invalid username or password') {
    super(message)
    this.name = 'InvalidCredentialsError'
  }
}

/** 401: a missing, malformed, forged, expired or revoked token, or a user that is gone. */
export class InvalidTokenError extends Error {
  readonly statusCode = 401
  constructor (message = 'Invalid or expired token') {
    // Rejecting is a hot path (garbage and forged tokens): a stack trace would be most of its cost.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message)
    Error.stackTraceLimit = limit
    this.name = 'InvalidTokenError'
  }
}

/** 401: the token is fine but its user has been deleted since. */
export class UserGoneError extends InvalidTokenError {
  constructor () {
    super('User no longer exists')
    this.name = 'UserGoneError'
  }
}

/** 400: the password is on the shipped list of common passwords. */
export class WeakPasswordError extends Error {
  readonly statusCode = 400
  constructor () {
    super('Password is too common; choose another')
    this.name = 'WeakPasswordError'
  }
}

/** 400: a password change without `current_password`. */
export class CurrentPasswordRequiredError extends Error {
  readonly statusCode = 400
  constructor () {
    super('current_password is required to change the password')
    this.name = 'CurrentPasswordRequiredError'
  }
}

/** 403: `current_password` does not match (or is no longer the current one). */
export class WrongCurrentPasswordError extends Error {
  readonly statusCode = 403
  constructor (message = 'current_password is wrong') {
    super(message)
    this.name = 'WrongCurrentPasswordError'
  }
}

/** 409: another account has this username (case-insensitively). */
export class UsernameTakenError extends Error {
  readonly statusCode = 409
  constructor () {
    super('Username is already taken')
    this.name = 'UsernameTakenError'
  }
}

/** 429 with Retry-After: a rate limit was reached. */
export class RateLimitedError extends Error {
  readonly statusCode = 429
  constructor (readonly retryAfter: number) {
    super('Too many attempts; try again later')
    this.name = 'RateLimitedError'
  }
}

/** 503 with Retry-After: more password hashing is queued than can finish in time. */
export class OverloadedError extends Error {
  readonly statusCode = 503
  constructor (readonly retryAfter: number, message = 'Server busy: too many logins at once; try again shortly') {
    super(message)
    this.name = 'OverloadedError'
  }
}

/** 503: the revocation store cannot be read or written, so the service will not guess. */
export class RevocationStoreUnavailableError extends Error {
  readonly statusCode = 503
  constructor (cause?: unknown) {
    super('Revocation store unavailable', { cause })
    this.name = 'RevocationStoreUnavailableError'
  }
}

/**
 * 499 (nginx's "client closed request"): the client went away while its password hashing
 * was still queued, so the work was dropped. Nobody reads the answer; the status only keeps
 * the error handlers from logging it as a failure of the service.
 */
export class ClientGoneError extends Error {
  readonly statusCode = 499
  constructor () {
    super('Client closed the request')
    this.name = 'ClientGoneError'
  }
}

/** 503: a password hashing thread died (or the pool is closing) while it held this job. */
export class PasswordHashingUnavailableError extends Error {
  readonly statusCode = 503
  readonly retryAfter = 1 // the pool replaces a dead thread at once
  constructor (cause?: unknown) {
    super('Password hashing unavailable; try again', { cause })
    this.name = 'PasswordHashingUnavailableError'
  }
}

/**
 * A start that configuration must fix (a database that does not exist or cannot be reached):
 * src/server.ts prints the message alone, one line naming the variable, without a stack.
 */
export class StartError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StartError'
  }
}

/** 403: the right password for an account an admin has disabled. */
export class AccountDisabledError extends Error {
  readonly statusCode = 403
  constructor () {
    super('Account disabled')
    this.name = 'AccountDisabledError'
  }
}

/** A wrong, reused or malformed second factor: 400 where a code is being set up, 401 at login. */
export class InvalidCodeError extends Error {
  constructor (readonly statusCode: 400 | 401 | 403 = 401) {
    super('Invalid code')
    this.name = 'InvalidCodeError'
  }
}

/** 401 on the compat login routes: this account needs the two-step login of the service API. */
export class MfaRequiredError extends Error {
  readonly statusCode = 401
  constructor () {
    super('Two-factor authentication required: use POST /auth/login')
    this.name = 'MfaRequiredError'
  }
}

/** 409: the two-factor state does not allow this (already on, nothing to confirm, not on). */
export class MfaStateError extends Error {
  readonly statusCode = 409
  constructor (message: string) {
    super(message)
    this.name = 'MfaStateError'
  }
}

/** 403: two-factor enrolment is switched off (MFA_ENROLMENT=off). */
export class MfaEnrolmentOffError extends Error {
  readonly statusCode = 403
  constructor () {
    super('Two-factor enrolment is switched off on this service')
    this.name = 'MfaEnrolmentOffError'
  }
}

/** 503: a TOTP secret cannot be read (no MFA_ENCRYPTION_KEY, or not the key it was sealed with). */
export class MfaUnavailableError extends Error {
  readonly statusCode = 503
  constructor () {
    super('Two-factor authentication unavailable: the server cannot read TOTP secrets')
    this.name = 'MfaUnavailableError'
  }
}

/** 400: a password reset token that is unknown, used or expired. */
export class InvalidResetTokenError extends Error {
  readonly statusCode = 400
  constructor () {
    super('Invalid or expired reset token')
    this.name = 'InvalidResetTokenError'
  }
}

/** 403: a valid token of a user without the admin role (checked in the database on each request). */
export class AdminRequiredError extends Error {
  readonly statusCode = 403
  constructor () {
    super('Admin role required')
    this.name = 'AdminRequiredError'
  }
}

/** 404: no user has this id (admin routes). */
export class UserNotFoundError extends Error {
  readonly statusCode = 404
  constructor () {
    super('User not found')
    this.name = 'UserNotFoundError'
  }
}
