import { Type } from '@sinclair/typebox'
import { StringEnum } from './common'
import { ERROR_MESSAGE_KEYWORD } from '../validation'

/** The feed's own security scheme (plugins/external/swagger.ts): REVOCATION_FEED_TOKEN, not an access token. */
export const FeedSecurity = [{ revocationFeedToken: [] as string[] }]

export const BAD_SINCE = 'since must be a non-negative integer (a position from a previous answer)'
export const BAD_LAST_EVENT_ID = 'Last-Event-ID must be a position (a non-negative integer) from a previous event'

/** Most entries one GET /revocations page carries. */
export const FEED_PAGE_SIZE = 10_000

export const RevocationEntry = Type.Object({
  kind: StringEnum(['jti', 'sid'], {
    description: 'revokes the access token with this jti, or every token of this session (sid)'
  }),
  id: Type.String({ description: 'the jti or the session id', examples: ['5d8a4c1e-2f7b-4b9a-8c3d-1e2f3a4b5c6d'] }),
  until: Type.Integer({
    description: 'epoch ms: revoked until then, never earlier than the expiry of the last access token it covers',
    examples: [1764842400000]
  })
}, { $id: 'RevocationEntry', title: 'RevocationEntry', additionalProperties: false })

export const RevocationPage = Type.Object({
  position: Type.Integer({
    minimum: 0, description: 'the log position this answer covers: pass it as since next time'
  }),
  entries: Type.Array(Type.Ref(RevocationEntry)),
  snapshot: Type.Boolean({
    description: 'true: entries is every live entry (no since, or the log no longer holds it); ' +
      'false: the entries after since'
  })
}, { $id: 'RevocationPage', title: 'RevocationPage', additionalProperties: false })

export const SinceQuery = Type.Object({
  since: Type.Optional(Type.String({
    pattern: '^[0-9]+$',
    description: 'the position already applied (a previous answer\'s position); without it, a snapshot',
    [ERROR_MESSAGE_KEYWORD]: BAD_SINCE
  }))
}, { additionalProperties: false })

export const LastEventIdHeader = Type.Object({
  'last-event-id': Type.Optional(Type.String({
    pattern: '^[0-9]*$',
    description: 'resume after this position (the id of the last event applied)',
    [ERROR_MESSAGE_KEYWORD]: BAD_LAST_EVENT_ID
  }))
})
