import type { FastifyBaseLogger } from 'fastify'
import type { RevocationEntry } from '../revocation/contract'
import { holdsPosition, type LogRow, type RevocationFeedRepository } from './contract'

/**
 * The revocation feed's fan-out (GET /revocations/stream, docs/api.md "Revocation feed").
 *
 * One tailer per process reads the rows committed after the last position it read and
 * writes them to every open stream, so the database sees one cheap query per interval
 * whatever the number of streams. It never makes an ordering rule of its own: it reads
 * `seq > tail ORDER BY seq`, and the log guarantees rows become visible in `seq` order
 * (src/db/<dialect>/revocation-log.ts), so each read is a prefix of what is still to come
 * and an event goes out only once its row is committed, in position order, with no gap.
 *
 * Joining (snapshot or resume, then catching up to the tailer) and tailing run one at a
 * time (`serial`), so a stream is never between two reads: after joining, its position is
 * at least the tailer's, and every later row reaches it exactly once.
 */

/** One open stream, as the hub sees it (plugins/app/revocation-feed.ts wraps reply.raw). */
export interface FeedSink {
  /** writes a chunk; answers false once the consumer is behind (Node's backpressure) */
  write: (chunk: string) => boolean
  /** bytes accepted by write but not yet handed to the socket */
  buffered: () => number
  open: () => boolean
  /** ends the response (shutdown) */
  end: () => void
  /** destroys the connection (a consumer too slow to read) */
  destroy: () => void
}

export interface FeedHubOptions {
  repository: RevocationFeedRepository
  /** every live entry and the position it covers, read consistently (revocationFeedRepository.snapshot) */
  snapshot: (now: number) => Promise<{ entries: RevocationEntry[], position: number }>
  logger: FastifyBaseLogger
  /** how often the tailer reads the log while a stream is open */
  pollMs?: number
  heartbeatMs?: number
  /** bytes a stream may hold unsent (beyond its snapshot) before it is dropped */
  maxBufferedBytes?: number
  /** a resume this far behind the tailer gets a snapshot instead of the rows one by one */
  maxCatchUp?: number
}

export interface FeedStatus {
  streams: number
  /** the highest position the tailer has read */
  position: number
  /** streams dropped for reading too slowly, since start */
  dropped: number
}

export interface FeedHub {
  /** Opens a stream: a snapshot, or a resume after `lastEventId`; resolves once it is live (or gone). */
  join: (sink: FeedSink, lastEventId: number | undefined) => Promise<void>
  /** The sink's connection closed. */
  leave: (sink: FeedSink) => void
  /** A revocation was just committed here: read the log now rather than at the next poll. */
  nudge: () => void
  status: () => FeedStatus
  /** Ends every stream and stops the tailer (app shutdown). */
  close: () => Promise<void>
}

interface Stream {
  sink: FeedSink
  /** the highest position this stream covers (sent, or skipped as expired) */
  position: number
  /** buffered bytes beyond which it is dropped */
  limit: number
}

const TAIL_BATCH = 1000
const CATCH_UP_PAGE = 1000
const SNAPSHOT_REUSE_MS = 1000

export const sse = {
  snapshot: (position: number, entries: RevocationEntry[]) =>
    `event: snapshot\nid: ${position}\ndata: ${JSON.stringify({ position, entries })}\n\n`,
  revoked: (row: LogRow) => {
    const entries = [{ kind: row.kind, id: row.id, until: row.until }]
    return `event: revoked\nid: ${row.position}\ndata: ${JSON.stringify({ position: row.position, entries })}\n\n`
  },
  heartbeat: (position: number, time: number) =>
    `event: heartbeat\ndata: {"position":${position},"time":${time}}\n\n`
}

export function createFeedHub (opts: FeedHubOptions): FeedHub {
  const { repository, logger } = opts
  const pollMs = opts.pollMs ?? 100
  const heartbeatMs = opts.heartbeatMs ?? 1000
  const maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024
  const maxCatchUp = opts.maxCatchUp ?? 10_000

  const streams = new Map<FeedSink, Stream>()
  let tail = 0
  let dropped = 0
  let closed = false
  /** when the last successful read of the log started: heartbeats vouch for nothing older */
  let lastRead = 0
  let cached: { at: number, position: number, chunk: string } | undefined

  let chain: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn)
    chain = run.catch(() => {})
    return run
  }

  const remove = (stream: Stream) => { streams.delete(stream.sink) }

  /** Writes, and drops the stream when what it has not read passes its limit. */
  const send = (stream: Stream, chunk: string): boolean => {
    if (!stream.sink.open()) {
      remove(stream)
      return false
    }
    stream.sink.write(chunk)
    if (stream.sink.buffered() > stream.limit) {
      remove(stream)
      dropped++
      logger.warn({ buffered: stream.sink.buffered(), position: stream.position },
        'revocation feed: consumer too slow, dropped (it resumes with Last-Event-ID)')
      stream.sink.destroy()
      return false
    }
    return true
  }

  const events = (rows: LogRow[], after: number, now: number) => {
    let out = ''
    for (const row of rows) if (row.position > after && row.until > now) out += sse.revoked(row)
    return out
  }

  /** Reads every row committed after `tail` and hands it to every stream. */
  const readTail = async () => {
    for (;;) {
      const started = Date.now()
      const rows = await repository.after(tail, TAIL_BATCH)
      lastRead = started
      if (rows.length === 0) return
      const from = tail
      const to = rows[rows.length - 1].position
      const now = Date.now()
      const all = events(rows, from, now)
      for (const stream of [...streams.values()]) {
        if (stream.position >= to) continue
        const chunk = stream.position <= from ? all : events(rows, stream.position, now)
        stream.position = to
        if (chunk !== '') send(stream, chunk)
      }
      tail = to
      if (rows.length < TAIL_BATCH) return
      // A burst: let the sockets drain between batches (SQLite reads never yield), so that
      // only a consumer that really stops reading falls behind by its limit.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  let timer: NodeJS.Timeout | undefined
  let pending = false
  /** Runs the tailer now (at most one waiting run) and again after pollMs while streams are open. */
  const tick = () => {
    if (pending || closed) return
    pending = true
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    serial(async () => {
      pending = false
      if (streams.size === 0 || closed) return
      try {
        await readTail()
      } catch (err) {
        logger.warn({ err }, 'revocation feed: reading the log failed; heartbeats stop until it succeeds')
      }
    }).finally(() => {
      if (!closed && streams.size > 0 && !pending && timer === undefined) timer = setTimeout(tick, pollMs)
    }).catch(() => {})
  }

  // A heartbeat vouches that everything committed before the last read is sent: none when
  // the tailer cannot read, so that consumers see the feed as stale rather than current.
  const heartbeats = setInterval(() => {
    const now = Date.now()
    if (now - lastRead > 2 * heartbeatMs) return
    for (const stream of [...streams.values()]) send(stream, sse.heartbeat(stream.position, now))
  }, heartbeatMs)
  heartbeats.unref()

  const join = async (sink: FeedSink, lastEventId: number | undefined) => {
    await serial(async () => {
      if (closed || !sink.open()) return
      const { first, last } = await repository.bounds()
      if (streams.size === 0) tail = Math.max(tail, last) // nothing listened: the tailer starts from here
      // Resuming needs the log to hold the position and a short way to go; otherwise a
      // snapshot, as on a fresh connection. (The tailer may have read a last row since pruned.)
      const resume = lastEventId !== undefined && holdsPosition(lastEventId, { first, last: Math.max(tail, last) }) &&
        tail - lastEventId <= maxCatchUp
      const stream: Stream = { sink, position: 0, limit: maxBuffered }
      if (resume) {
        stream.position = lastEventId
      } else {
        // Streams that connect together (a fleet restarting) share one read: a snapshot up to
        // a second old is as good, since the catch-up below sends every row after it.
        if (cached === undefined || Date.now() - cached.at > SNAPSHOT_REUSE_MS) {
          const at = Date.now()
          const snapshot = await opts.snapshot(at)
          cached = { at, position: snapshot.position, chunk: sse.snapshot(snapshot.position, snapshot.entries) }
        }
        const { chunk } = cached
        stream.position = cached.position
        stream.limit = maxBuffered + Buffer.byteLength(chunk)
        if (!send(stream, chunk)) return
      }
      // Catch up to the tailer from the log itself (the rows it already handed out).
      while (stream.position < tail) {
        const rows = (await repository.after(stream.position, CATCH_UP_PAGE)).filter((r) => r.position <= tail)
        if (rows.length === 0) break
        const chunk = events(rows, stream.position, Date.now())
        stream.position = rows[rows.length - 1].position
        if (chunk !== '' && !send(stream, chunk)) return
        await new Promise((resolve) => setImmediate(resolve)) // let the socket drain, as in readTail
      }
      stream.position = Math.max(stream.position, tail)
      if (!send(stream, sse.heartbeat(stream.position, Date.now()))) return
      streams.set(sink, stream)
    })
    tick()
  }

  return {
    join,
    leave (sink) { streams.delete(sink) },
    nudge: tick,
    status: () => ({ streams: streams.size, position: tail, dropped }),
    async close () {
      closed = true
      clearInterval(heartbeats)
      if (timer !== undefined) clearTimeout(timer)
      for (const stream of streams.values()) stream.sink.end()
      streams.clear()
      cached = undefined
      await chain
    }
  }
}
