import { Type, type Static } from '@sinclair/typebox'
import { IsoTime, Uuid } from './common'
import { Password } from './users'
import { Session } from './sessions'

// Two-factor login, administration and password resets (docs/api.md, "Accounts").

const MFA_TOKEN_EXAMPLE = 'pV3x9Qm2xV7cR1yT8bN4wZ0aL6dF5hJ2gP9eU3iO7sM'
const RECOVERY_EXAMPLE = 'k7qd-2mfa-x9zt-a4re'

/** The first step's answer for an account with TOTP: no tokens yet. A type of its own for generated clients. */
export const MfaChallenge = Type.Object({
  mfa_required: Type.Literal(true),
  mfa_token: Type.String({
    description: 'opaque; for POST /auth/login/mfa only: one user, 5 minutes, 5 wrong codes at most, ' +
      'consumed by a right one',
    examples: [MFA_TOKEN_EXAMPLE]
  }),
  expires_in: Type.Integer({ description: 'seconds the mfa_token lives', examples: [300] })
}, { $id: 'MfaChallenge', title: 'MfaChallenge', additionalProperties: false })
export type MfaChallenge = Static<typeof MfaChallenge>

const MfaToken = Type.String({ minLength: 1, maxLength: 128, examples: [MFA_TOKEN_EXAMPLE] })
export const TotpCode = Type.String({
  minLength: 1,
  maxLength: 16,
  description: 'the 6-digit code the authenticator app shows now',
  examples: ['492039']
})
export const RecoveryCode = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'one of the recovery codes shown when TOTP was turned on (each works once)',
  examples: [RECOVERY_EXAMPLE]
})

export const MfaLoginRequest = Type.Union([
  Type.Object({ mfa_token: MfaToken, code: TotpCode }, { title: 'MfaLoginWithCode', additionalProperties: false }),
  Type.Object({ mfa_token: MfaToken, recovery_code: RecoveryCode },
    { title: 'MfaLoginWithRecoveryCode', additionalProperties: false })
], {
  $id: 'MfaLoginRequest',
  title: 'MfaLoginRequest',
  description: 'The mfa_token of step one, with a TOTP code or a recovery code'
})
export type MfaLoginRequest = Static<typeof MfaLoginRequest>

export const TotpEnrolmentRequest = Type.Object({
  current_password: Type.String({ minLength: 1, maxLength: 1024, examples: ['correct horse battery staple'] })
}, { $id: 'TotpEnrolmentRequest', title: 'TotpEnrolmentRequest', additionalProperties: false })

export const TotpEnrolment = Type.Object({
  secret: Type.String({
    description: 'the TOTP secret, base32 (type it into an authenticator app)',
    examples: ['JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP']
  }),
  otpauth_uri: Type.String({
    description: 'the same as an otpauth:// URI (show it as a QR code)',
    examples: ['otpauth://totp/auth-service:alice?issuer=auth-service&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' +
      '&algorithm=SHA1&digits=6&period=30']
  })
}, { title: 'TotpEnrolment', description: 'An enrolment: TOTP is not required at login until confirmed' })

export const TotpConfirmRequest = Type.Object({ code: TotpCode }, {
  $id: 'TotpConfirmRequest',
  title: 'TotpConfirmRequest',
  additionalProperties: false
})

export const RecoveryCodes = Type.Object({
  recovery_codes: Type.Array(Type.String({ examples: [RECOVERY_EXAMPLE] }), {
    minItems: 10, maxItems: 10, description: 'shown this once; each logs in once in place of a TOTP code'
  })
}, { title: 'RecoveryCodes', description: 'TOTP is on: the recovery codes, shown this once' })

export const TotpDisableRequest = Type.Object({
  current_password: Type.String({ minLength: 1, maxLength: 1024, examples: ['correct horse battery staple'] }),
  code: Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'a TOTP code or a recovery code',
    examples: ['492039']
  })
}, { $id: 'TotpDisableRequest', title: 'TotpDisableRequest', additionalProperties: false })

export const PasswordResetRequest = Type.Object({
  reset_token: Type.String({
    minLength: 1,
    maxLength: 128,
    description: 'the token an admin handed over',
    examples: [MFA_TOKEN_EXAMPLE]
  }),
  new_password: Password
}, { $id: 'PasswordResetRequest', title: 'PasswordResetRequest', additionalProperties: false })

export const PasswordResetToken = Type.Object({
  reset_token: Type.String({
    description: 'opaque, single use; hand it to the user out of band',
    examples: [MFA_TOKEN_EXAMPLE]
  }),
  expires_in: Type.Literal(900, { description: 'seconds' })
}, {
  title: 'PasswordResetToken',
  description: 'A reset token: give it to the user, who calls POST /auth/password/reset'
})

const adminUserFields = {
  id: Uuid(),
  username: Type.String({ examples: ['alice'] }),
  created_at: IsoTime,
  updated_at: IsoTime,
  roles: Type.Array(Type.String({ examples: ['admin'] }), { description: 'admin is the one role' }),
  disabled: Type.Boolean({ description: 'disabled by an admin: no login', examples: [false] }),
  mfa_enabled: Type.Boolean({ description: 'TOTP is required at login', examples: [true] }),
  last_login_at: Type.Union([IsoTime, Type.Null()],
    { description: 'the last login that started a session; null: none yet' })
}
export const AdminUser = Type.Object(adminUserFields, { $id: 'AdminUser', title: 'AdminUser' })
export type AdminUser = Static<typeof AdminUser>

export const AdminUserDetail = Type.Object({
  ...adminUserFields,
  sessions: Type.Array(Type.Ref(Session), { description: 'the active sessions (current: the asking admin\'s own)' })
}, { $id: 'AdminUserDetail', title: 'AdminUserDetail' })

export const AdminUserPage = Type.Object({
  users: Type.Array(Type.Ref(AdminUser), { description: 'in username order (case-insensitively)' }),
  next: Type.Optional(Type.String({ description: 'present when more may follow: pass it as `after`' }))
}, { title: 'AdminUserPage', description: 'A page of users matching the prefix' })

export const AdminUserQuery = Type.Object({
  query: Type.Optional(Type.String({
    maxLength: 64, pattern: '^[A-Za-z0-9._-]*$', description: 'a username prefix (case-insensitive); empty: everyone'
  })),
  limit: Type.Optional(Type.String({
    pattern: '^(100|[1-9][0-9]?)$',
    description: 'users per page, 1 to 100 (default 20)'
  })),
  after: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 128,
    pattern: '^[A-Za-z0-9_-]+$',
    description: 'an opaque cursor: the `next` of the previous page'
  }))
}, { additionalProperties: false })

export const AdminUserParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, description: 'a user id' })
})

/** The AdminUser body of an account. */
export function toAdminUser (a: {
  id: string,
  username: string,
  createdAt: number,
  updatedAt: number,
  roles: string[],
  disabled: boolean,
  mfaEnabled: boolean,
  lastLoginAt: number | null
}): AdminUser {
  return {
    id: a.id,
    username: a.username,
    created_at: new Date(a.createdAt).toISOString(),
    updated_at: new Date(a.updatedAt).toISOString(),
    roles: a.roles,
    disabled: a.disabled,
    mfa_enabled: a.mfaEnabled,
    last_login_at: a.lastLoginAt === null ? null : new Date(a.lastLoginAt).toISOString()
  }
}
