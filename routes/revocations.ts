import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponse, errors } from '../src/schemas/common'
import {
  BAD_LAST_EVENT_ID, BAD_SINCE, FEED_PAGE_SIZE, FeedSecurity, LastEventIdHeader, RevocationEntry, RevocationPage,
  SinceQuery
} from '../src/schemas/revocations'
import { errorBody } from '../src/http-errors'
import { holdsPosition } from '../src/feed/contract'

const UNAUTHORISED = 'The revocation feed needs Authorization: Bearer <REVOCATION_FEED_TOKEN>'
const feedErrors = {
  401: errorResponse(401, 'The Authorization header does not carry REVOCATION_FEED_TOKEN', UNAUTHORISED),
  ...errors(503)
}

/**
 * The revocation feed (docs/api.md "Revocation feed"), for services that verify access
 * tokens themselves: only with REVOCATION_FEED_TOKEN set (otherwise these paths do not
 * exist: 404), never rate limited (its consumers are our own services, already behind a
 * secret), and answered with Cache-Control: no-store like every answer.
 */
const revocations: FastifyPluginAsyncTypebox = async (fastify) => {
  const feed = fastify.revocationFeed
  if (feed === null) return
  fastify.addSchema(RevocationEntry)
  fastify.addSchema(RevocationPage)

  fastify.addHook('onRequest', async (request, reply) => {
    if (feed.authorised(request.headers.authorization)) return
    reply.header('www-authenticate', 'Bearer')
    return await reply.code(401).send(errorBody(401, UNAUTHORISED))
  })

  fastify.get('/revocations', {
    schema: {
      operationId: 'listRevocations',
      tags: ['revocation-feed'],
      summary: 'Revocations after a position, in pages (for consumers that cannot hold a stream)',
      description: 'Without since, or when the log no longer holds it: every live entry (snapshot: true). Else the ' +
        `entries after since, at most ${FEED_PAGE_SIZE} a page: call again with since=position while a page is full.`,
      security: FeedSecurity,
      querystring: SinceQuery,
      response: {
        200: Type.Ref(RevocationPage, { description: 'Entries, and the position they cover' }),
        400: errorResponse(400, 'since is not a non-negative integer', BAD_SINCE, 'FST_ERR_VALIDATION'),
        ...feedErrors
      }
    }
  }, async (request) => {
    const since = request.query.since === undefined ? undefined : Number(request.query.since)
    const now = Date.now()
    if (since !== undefined && holdsPosition(since, await fastify.revocationFeedRepository.bounds())) {
      const page = await fastify.revocationFeedRepository.page(since, now, FEED_PAGE_SIZE)
      const entries = page.rows.map(({ kind, id, until }) => ({ kind, id, until }))
      return { position: page.position, entries, snapshot: false }
    }
    const { position, entries } = await fastify.revocationFeedRepository.snapshot(now)
    return { position, entries, snapshot: true }
  })

  fastify.get('/revocations/stream', {
    schema: {
      operationId: 'streamRevocations',
      tags: ['revocation-feed'],
      summary: 'Revocations as they commit (Server-Sent Events: snapshot, revoked, heartbeat)',
      description: 'First a snapshot event (every live entry and its position) unless Last-Event-ID names a ' +
        'position the log still holds; then a revoked event per committed revocation, its id the position; a ' +
        'heartbeat event every second with the position sent so far and the server time.',
      security: FeedSecurity,
      headers: LastEventIdHeader,
      response: {
        200: {
          description: 'An event stream (text/event-stream) that stays open',
          content: { 'text/event-stream': { schema: Type.String() } }
        },
        400: errorResponse(400, 'Last-Event-ID is not a position', BAD_LAST_EVENT_ID, 'FST_ERR_VALIDATION'),
        ...feedErrors
      }
    }
  }, async (request, reply) => {
    const header = request.headers['last-event-id']
    const lastEventId = header === undefined || header === '' ? undefined : Number(header)
    // The database answers before the stream starts: otherwise a clear 503, not a stream that dies.
    await fastify.revocationFeedRepository.bounds()
    reply.hijack()
    await feed.stream(reply, lastEventId)
  })
}

export default revocations
