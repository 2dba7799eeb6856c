import { Type, type Static } from '@sinclair/typebox'
import { StringEnum, USER_ID } from './common'

/** The claims of a verified access token. */
export interface AccessClaims {
  sub: string
  sid: string
  jti: string
  iat: number
  exp: number
}

export const JWT_EXAMPLE = 'eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.' +
  'eyJzdWIiOiIwYjdlNWE1Mi0zYzFmLTRhOGUtOWQyNy02ZjFmMmM5ZThiNDEiLCJzaWQiOiI1ZDJmIn0.' +
  '1TRW2QyVvYvZ6bA3xkqgq2h0Qx7N5m8r9s1t2u3v4w5'
export const REFRESH_EXAMPLE = 'kq3S9Qm2xV7cR1yT8bN4wZ0aL6dF5hJ2gP9eU3iO7sM'

export const AccessToken = Type.String({ description: 'a JWT (typ at+jwt)', examples: [JWT_EXAMPLE] })

export const TokenPair = Type.Object({
  access_token: AccessToken,
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'seconds', examples: [900] }),
  refresh_token: Type.String({
    description: 'opaque; single use, rotated by /auth/refresh',
    examples: [REFRESH_EXAMPLE]
  }),
  refresh_expires_in: Type.Integer({ description: 'seconds', examples: [2592000] })
}, { $id: 'TokenPair', title: 'TokenPair' })
export type TokenPair = Static<typeof TokenPair>

export const RefreshRequest = Type.Object({
  refresh_token: Type.String({ minLength: 1, maxLength: 512, examples: [REFRESH_EXAMPLE] })
}, { $id: 'RefreshRequest', title: 'RefreshRequest', additionalProperties: false })

export const LogoutRequest = Type.Object({
  // No `default` keyword: generators (openapi-typescript) would make the field required.
  scope: Type.Optional(StringEnum(['session', 'all'], {
    description: 'session (when absent): this session only; all: every session of the user, this one included',
    examples: ['session']
  }))
}, { $id: 'LogoutRequest', title: 'LogoutRequest', additionalProperties: false })
export type LogoutRequest = Static<typeof LogoutRequest>

export const IntrospectRequest = Type.Object({
  token: Type.String({ maxLength: 12288, description: 'an access token', examples: [JWT_EXAMPLE] })
}, { $id: 'IntrospectRequest', title: 'IntrospectRequest', additionalProperties: false })

export const IntrospectResponse = Type.Union([
  Type.Object({
    active: Type.Literal(true),
    sub: Type.String({ description: 'the user id', examples: [USER_ID] }),
    username: Type.String({ examples: ['alice'] }),
    sid: Type.String({ description: 'the session id', examples: ['5d2f0c8e-61a4-4f0b-8c1e-2b7a9d3e4f60'] }),
    jti: Type.String({ description: 'the token id', examples: ['9a1c3e5f-7b2d-4c6e-8f0a-1b3d5f7a9c2e'] }),
    iat: Type.Integer({ description: 'issued at, seconds since the epoch', examples: [1795512600] }),
    exp: Type.Integer({ description: 'expires at, seconds since the epoch', examples: [1795513500] })
  }, { title: 'ActiveToken', additionalProperties: false }),
  Type.Object({ active: Type.Literal(false) }, { title: 'InactiveToken', additionalProperties: false })
], { title: 'IntrospectResponse', description: 'Whether the token is active; nothing more when it is not' })
export type IntrospectResponse = Static<typeof IntrospectResponse>
