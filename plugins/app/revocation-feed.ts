import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply } from 'fastify'
import type { Redis } from 'ioredis'
import { createFeedHub, type FeedHub, type FeedSink } from '../../src/feed/hub'

declare module 'fastify' {
  interface FastifyInstance {
    /** The revocation feed (routes/revocations.ts); null when REVOCATION_FEED_TOKEN is unset. */
    revocationFeed: RevocationFeed | null
  }
}

export interface RevocationFeed {
  /** whether an Authorization header carries the feed's token (constant time) */
  authorised: (header: string | undefined) => boolean
  hub: FeedHub
  /** Turns a hijacked reply into a stream of the hub (SSE headers first). */
  stream: (reply: FastifyReply, lastEventId: number | undefined) => Promise<void>
}

/**
 * Compares SHA-256 digests, which have the same length whatever was sent: the time taken
 * says nothing about the token, not even its length.
 */
export function bearerMatcher (token: string): (header: string | undefined) => boolean {
  const expected = createHash('sha256').update(token).digest()
  return (header) => {
    const given = header !== undefined && header.slice(0, 7).toLowerCase() === 'bearer ' ? header.slice(7) : ''
    return timingSafeEqual(createHash('sha256').update(given).digest(), expected)
  }
}

/**
 * The revocation feed's one hub per process (src/feed/hub.ts): a tailer of the revocation
 * log that fans out to every open stream. Streams end when the app closes, before the
 * listener waits for open connections.
 */
export default fp(async function revocationFeed (fastify) {
  const token = fastify.config.revocationFeedToken
  if (token === undefined) {
    fastify.decorate('revocationFeed', null)
    return
  }
  const hub = createFeedHub({
    repository: fastify.revocationFeedRepository,
    snapshot: async (now) => await fastify.revocationFeedRepository.snapshot(now),
    logger: fastify.log
  })

  const stream = async (reply: FastifyReply, lastEventId: number | undefined) => {
    const raw = reply.raw
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // no proxy may hold events back to batch them
      'x-accel-buffering': 'no',
      connection: 'keep-alive'
    })
    raw.flushHeaders()
    const sink: FeedSink = {
      write: (chunk) => raw.write(chunk),
      buffered: () => raw.writableLength,
      open: () => !raw.destroyed && !raw.writableEnded,
      end: () => { raw.end() },
      destroy: () => { raw.destroy() }
    }
    raw.on('close', () => { hub.leave(sink) })
    raw.on('error', () => {}) // a consumer gone mid-write: 'close' follows
    try {
      await hub.join(sink, lastEventId)
    } catch (err) {
      // The database failed mid-join: the consumer reconnects (to this or another instance).
      reply.log.warn({ err }, 'revocation feed: a stream could not start')
      raw.destroy()
    }
  }

  // Every instance publishes each revocation on Redis once it is committed (src/revocation/
  // redis-store.ts): a nudge to read the log now, so consumers learn it within milliseconds
  // rather than at the next poll. The log stays the only source: a lost message costs a poll.
  let subscriber: Redis | undefined
  if (fastify.hasDecorator('redis')) {
    const channel = `${fastify.config.redisPrefix}revocations`
    subscriber = fastify.redis.duplicate({ enableOfflineQueue: true, lazyConnect: false })
    subscriber.on('error', () => {}) // the main connection already logs outages
    subscriber.on('message', (from: string) => { if (from === channel) hub.nudge() })
    subscriber.subscribe(channel).catch(() => {})
  }

  fastify.decorate('revocationFeed', { authorised: bearerMatcher(token), hub, stream })
  fastify.addHook('preClose', async () => { await hub.close() })
  fastify.addHook('onClose', async () => { subscriber?.disconnect() })
}, {
  name: 'revocation-feed',
  dependencies: ['config', 'redis', 'repositories']
})
