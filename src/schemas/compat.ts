import { Type } from '@sinclair/typebox'
import { JWT_EXAMPLE } from './tokens'

// Schemas of the seed-compatible routes (routes/compat), named so that the OpenAPI document
// refers to one component each instead of repeating them inline under one title.

/** Error body of the 001 seed (Flask-JWT-Extended). */
export const CompatMsgError = Type.Object({
  msg: Type.String({ examples: ['Bad username or password'] })
}, { $id: 'CompatMsgError', title: 'CompatMsgError' })

/** Error body of the 000 seed. */
export const CompatMessageError = Type.Object({
  message: Type.String({ examples: ['Invalid or expired token'] })
}, { $id: 'CompatMessageError', title: 'CompatMessageError' })

/** `{token}` in the body, or no body at all when the token comes as a bearer token. */
export const CompatTokenInput = Type.Object({
  token: Type.Optional(Type.String({
    maxLength: 8192,
    description: 'an access token; when absent, Authorization: Bearer is read',
    examples: [JWT_EXAMPLE]
  }))
}, {
  $id: 'CompatTokenInput',
  title: 'CompatTokenInput',
  description: 'Optional: without a body (or without token), the token is read from Authorization: Bearer.',
  additionalProperties: false,
  nullable: true
})
