import { Type, type Static } from '@sinclair/typebox'
import { IsoTime } from './common'

export const USERNAME_PATTERN = '^[A-Za-z0-9._-]{3,64}$'

export const Username = Type.String({
  minLength: 3,
  maxLength: 64,
  pattern: USERNAME_PATTERN,
  description: '3-64 characters of A-Z a-z 0-9 . _ -; unique case-insensitively, returned as first written'
})

/**
 * Passwords are pre-hashed (SHA-256) before bcrypt, so every byte counts and there is no
 * 72-byte limit; the upper bound only refuses absurd bodies before any hashing.
 */
export const Password = Type.String({
  minLength: 8,
  maxLength: 1024,
  description: 'at least 8 characters (at most 1024); compared exactly as sent, every byte counts'
})

export const Credentials = Type.Object({
  username: Username,
  password: Password
}, { additionalProperties: false })
export type Credentials = Static<typeof Credentials>

/** Login accepts any non-empty strings: a wrong shape is 400, a wrong value is the usual 401. */
export const LoginCredentials = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 1024 })
}, { additionalProperties: false })
export type LoginCredentials = Static<typeof LoginCredentials>

export const User = Type.Object({
  id: Type.String({ format: 'uuid' }),
  username: Type.String(),
  created_at: IsoTime,
  updated_at: IsoTime
}, { $id: 'User', title: 'User' })
export type User = Static<typeof User>

export const RegisteredUser = Type.Object({
  id: Type.String({ format: 'uuid' }),
  username: Type.String(),
  created_at: IsoTime
}, { title: 'RegisteredUser' })

export const UserPatch = Type.Object({
  username: Type.Optional(Username),
  password: Type.Optional(Password),
  current_password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'required when password is given' }))
}, { additionalProperties: false, minProperties: 1 })
export type UserPatch = Static<typeof UserPatch>
