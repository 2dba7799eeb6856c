import { Type, type Static } from '@sinclair/typebox'
import { IsoTime, Uuid } from './common'
import { ERROR_MESSAGE_KEYWORD } from '../validation'

export const USERNAME_PATTERN = '^[A-Za-z0-9._-]{3,64}$'

export const Username = Type.String({
  minLength: 3,
  maxLength: 64,
  pattern: USERNAME_PATTERN,
  description: '3-64 characters of A-Z a-z 0-9 . _ -; unique case-insensitively, returned as first written',
  examples: ['alice'],
  [ERROR_MESSAGE_KEYWORD]: 'username must be 3 to 64 characters of A-Z a-z 0-9 . _ -'
})

export const COMMON_PASSWORD_MESSAGE = 'Password is too common; choose another'

/**
 * Passwords are pre-hashed (SHA-256) before bcrypt, so every byte counts and there is no
 * 72-byte limit; the upper bound only refuses absurd bodies before any hashing.
 */
export const Password = Type.String({
  minLength: 8,
  maxLength: 1024,
  description: '8 to 1024 characters, compared exactly as sent (every byte counts). The most common passwords ' +
    `(a shipped list) are refused with 400 "${COMMON_PASSWORD_MESSAGE}".`,
  examples: ['correct horse battery staple']
})

export const Credentials = Type.Object({
  username: Username,
  password: Password
}, { $id: 'Credentials', title: 'Credentials', additionalProperties: false })
export type Credentials = Static<typeof Credentials>

/** Login accepts any non-empty strings: a wrong shape is 400, a wrong value is the usual 401. */
export const LoginCredentials = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64, description: 'case-insensitive', examples: ['alice'] }),
  password: Type.String({ minLength: 1, maxLength: 1024, examples: ['correct horse battery staple'] })
}, { $id: 'LoginCredentials', title: 'LoginCredentials', additionalProperties: false })
export type LoginCredentials = Static<typeof LoginCredentials>

export const User = Type.Object({
  id: Uuid(),
  username: Type.String({ examples: ['alice'] }),
  created_at: IsoTime,
  updated_at: IsoTime
}, { $id: 'User', title: 'User' })
export type User = Static<typeof User>

/** The User body of a stored profile. */
export function toUser (u: { id: string, username: string, createdAt: number, updatedAt: number }): User {
  return {
    id: u.id,
    username: u.username,
    created_at: new Date(u.createdAt).toISOString(),
    updated_at: new Date(u.updatedAt).toISOString()
  }
}

export const RegisteredUser = Type.Object({
  id: Uuid(),
  username: Type.String({ examples: ['alice'] }),
  created_at: IsoTime
}, { title: 'RegisteredUser', description: 'The account is created' })

export const NOTHING_TO_CHANGE = 'Nothing to change: give username and/or password'
export const CURRENT_PASSWORD_REQUIRED = 'current_password is required to change the password'

/**
 * A change of username and/or password. Its two rules are written into the schema, so that
 * clients and fuzzers see them and validation refuses a body that breaks one, with its message.
 */
export const UserPatch = Type.Object({
  username: Type.Optional(Username),
  password: Type.Optional(Password),
  current_password: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 1024,
    description: 'the password now; required when password is given (403 when it is wrong)',
    examples: ['correct horse battery staple']
  }))
}, {
  $id: 'UserPatch',
  title: 'UserPatch',
  description: 'At least one of username and password; password needs current_password.',
  additionalProperties: false,
  allOf: [
    { anyOf: [{ required: ['username'] }, { required: ['password'] }], [ERROR_MESSAGE_KEYWORD]: NOTHING_TO_CHANGE },
    {
      anyOf: [{ not: { required: ['password'] } }, { required: ['current_password'] }],
      [ERROR_MESSAGE_KEYWORD]: CURRENT_PASSWORD_REQUIRED
    }
  ]
})
export type UserPatch = Static<typeof UserPatch>
