import { Type, type Static } from '@sinclair/typebox'
import { IsoTime } from './common'

export const Session = Type.Object({
  id: Type.String({ format: 'uuid' }),
  created_at: IsoTime,
  last_used_at: IsoTime,
  expires_at: IsoTime,
  current: Type.Boolean({ description: 'true for the session of the token that made this request' })
}, { $id: 'Session', title: 'Session' })
export type Session = Static<typeof Session>

export const SessionList = Type.Array(Type.Ref(Session))

export const SessionParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 })
})
