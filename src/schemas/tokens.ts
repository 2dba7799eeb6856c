import { Type, type Static } from '@sinclair/typebox'

export const TokenPair = Type.Object({
  access_token: Type.String({ description: 'JWT (HS256, typ at+jwt)' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'seconds' }),
  refresh_token: Type.String({ description: 'opaque; single use, rotated by /auth/refresh' }),
  refresh_expires_in: Type.Integer({ description: 'seconds' })
}, { $id: 'TokenPair', title: 'TokenPair' })
export type TokenPair = Static<typeof TokenPair>

export const RefreshRequest = Type.Object({
  refresh_token: Type.String({ minLength: 1, maxLength: 512 })
}, { additionalProperties: false })

export const LogoutRequest = Type.Object({
  scope: Type.Optional(Type.Union([Type.Literal('session'), Type.Literal('all')], { default: 'session' }))
}, { additionalProperties: false })

export const IntrospectRequest = Type.Object({
  token: Type.String({ maxLength: 12288 })
}, { additionalProperties: false })

export const IntrospectResponse = Type.Union([
  Type.Object({
    active: Type.Literal(true),
    sub: Type.String(),
    username: Type.String(),
    sid: Type.String(),
    jti: Type.String(),
    iat: Type.Integer(),
    exp: Type.Integer()
  }, { additionalProperties: false }),
  Type.Object({ active: Type.Literal(false) }, { additionalProperties: false })
], { title: 'IntrospectResponse' })
export type IntrospectResponse = Static<typeof IntrospectResponse>
