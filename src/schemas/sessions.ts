import { Type, type Static } from '@sinclair/typebox'
import { IsoTime, Uuid } from './common'

export const Session = Type.Object({
  id: Uuid(),
  created_at: IsoTime,
  last_used_at: IsoTime,
  expires_at: IsoTime,
  current: Type.Boolean({ description: 'true for the session of the token that made this request', examples: [true] })
}, { $id: 'Session', title: 'Session' })
export type Session = Static<typeof Session>

export const SessionList = Type.Array(Type.Ref(Session), { description: 'The active sessions of the user' })

export const SessionParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, description: 'a session id, as GET /users/me/sessions lists them' })
})
