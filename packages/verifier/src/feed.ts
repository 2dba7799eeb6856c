import { EventSource, type FetchLike } from 'eventsource'
import { Blocklist, type FeedEntry } from './blocklist'

export interface FeedLogger {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export interface FeedOptions {
  urls: string[]
  token: string
  staleAfter: number
  log: FeedLogger
  /** first and smallest wait before reconnecting (ms); doubles per failure up to maxBackoff */
  minBackoff?: number
  maxBackoff?: number
}

export interface FeedStatus {
  /** a stream is open and has delivered events */
  connected: boolean
  /** the highest log position applied (null before the first snapshot) */
  position: number | null
  /** local arrival time minus the server's time in the last heartbeat (transit plus clock offset) */
  lagMs: number | null
  entries: number
  /** ms since the last event or heartbeat (null before the first) */
  lastEventAgeMs: number | null
}

interface Positioned { position: number }

/**
 * Holds one Server-Sent Events stream to the service's revocation feed at a time and keeps
 * the blocklist current. The SSE framing is `eventsource`'s (a kept WHATWG client); the
 * connection policy is ours, because the standard one cannot switch URL, back off or notice
 * a stalled link: every failure closes the EventSource and a new one is opened, after a
 * backoff, on the next URL of the list, resuming with `Last-Event-ID` from the last
 * position applied.
 */
export class Feed {
  readonly blocklist = new Blocklist()
  position: number | null = null
  /** Date.now() of the last event or heartbeat; 0 = never */
  lastEventAt = 0
  lagMs: number | null = null
  connected = false
  reconnects = 0
  lastError = ''
  /** resolves on the first snapshot */
  readonly ready: Promise<void>

  private source: EventSource | null = null
  private openedAt = 0
  private urlIndex = 0
  private failures = 0
  private closed = false
  private retryTimer: NodeJS.Timeout | null = null
  private readonly watchdog: NodeJS.Timeout
  private readonly sweeper: NodeJS.Timeout
  private resolveReady!: () => void
  private readonly minBackoff: number
  private readonly maxBackoff: number

  constructor (private readonly opts: FeedOptions) {
    this.minBackoff = opts.minBackoff ?? 100
    this.maxBackoff = opts.maxBackoff ?? 5000
    this.ready = new Promise((resolve) => { this.resolveReady = resolve })
    // A stalled link never errors: with no event or heartbeat for staleAfter (heartbeats come
    // every second), the stream is given up and another one opened.
    this.watchdog = setInterval(() => this.checkAlive(), Math.max(50, Math.min(250, opts.staleAfter / 4)))
    this.watchdog.unref()
    this.sweeper = setInterval(() => this.blocklist.sweep(), 30_000)
    this.sweeper.unref()
    this.connect()
  }

  /** true when the blocklist may be trusted: an event or heartbeat arrived within staleAfter */
  fresh (now = Date.now()): boolean {
    return now - this.lastEventAt < this.opts.staleAfter
  }

  status (now = Date.now()): FeedStatus {
    return {
      connected: this.connected,
      position: this.position,
      lagMs: this.lagMs,
      entries: this.blocklist.size,
      lastEventAgeMs: this.lastEventAt === 0 ? null : now - this.lastEventAt
    }
  }

  close (): void {
    this.closed = true
    clearInterval(this.watchdog)
    clearInterval(this.sweeper)
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    this.drop()
  }

  private connect (): void {
    if (this.closed) return
    const url = this.opts.urls[this.urlIndex]
    // The resume point is read when the request is made, so a retry carries the latest one.
    const fetchWithAuth: FetchLike = (input, init) => {
      const headers: Record<string, string> = { ...init.headers, Authorization: `Bearer ${this.opts.token}` }
      delete headers['Last-Event-ID']
      if (this.position !== null) headers['Last-Event-ID'] = String(this.position)
      return fetch(input, { ...init, headers })
    }
    const source = new EventSource(url, { fetch: fetchWithAuth })
    this.source = source
    this.openedAt = Date.now()
    source.addEventListener('open', () => {
      if (this.source !== source) return
      this.opts.log.info({ url }, 'revocation feed connected')
    })
    source.addEventListener('error', (ev) => {
      if (this.source !== source) return
      this.fail(ev.message ?? 'stream error')
    })
    source.addEventListener('snapshot', (ev) => this.onEvent(source, 'snapshot', ev.data))
    source.addEventListener('revoked', (ev) => this.onEvent(source, 'revoked', ev.data))
    source.addEventListener('heartbeat', (ev) => this.onEvent(source, 'heartbeat', ev.data))
  }

  private onEvent (source: EventSource, type: 'snapshot' | 'revoked' | 'heartbeat', raw: string): void {
    if (this.source !== source) return
    let data: Positioned & { entries?: FeedEntry[], time?: number }
    try {
      data = JSON.parse(raw)
    } catch {
      this.fail(`unreadable ${type} event`)
      return
    }
    if (!Number.isSafeInteger(data?.position) || data.position < 0) {
      this.fail(`${type} event without a valid position`)
      return
    }
    const now = Date.now()
    if (type === 'snapshot') {
      if (!Array.isArray(data.entries)) { this.fail('snapshot without entries'); return }
      this.blocklist.replace(data.entries, now)
      this.position = data.position
    } else if (type === 'revoked') {
      if (!Array.isArray(data.entries)) { this.fail('revoked event without entries'); return }
      if (this.position === null) { this.fail('revoked event before any snapshot'); return }
      // A replayed position (a resume that overlaps) changes nothing; entries only add.
      this.blocklist.add(data.entries, now)
      if (data.position > this.position) this.position = data.position
    } else {
      if (this.position === null) return
      if (data.position > this.position) {
        // The server has sent more than we applied: something was lost. Resume from what we have.
        this.fail(`heartbeat at position ${data.position} ahead of applied position ${this.position}`)
        return
      }
      if (typeof data.time === 'number') this.lagMs = now - data.time
    }
    if (this.position === null) return
    this.lastEventAt = now
    this.failures = 0
    if (!this.connected) {
      this.connected = true
      this.lastError = ''
    }
    if (type === 'snapshot') this.resolveReady()
  }

  private checkAlive (): void {
    if (this.source === null || this.closed) return
    const since = Math.max(this.lastEventAt, this.openedAt)
    if (Date.now() - since >= this.opts.staleAfter) this.fail(`no event or heartbeat for ${this.opts.staleAfter} ms`)
  }

  private drop (): void {
    if (this.source !== null) {
      this.source.close()
      this.source = null
    }
    this.connected = false
  }

  /** Gives up the current stream and schedules the next attempt, on the next URL. */
  private fail (reason: string): void {
    if (this.closed) return
    const url = this.opts.urls[this.urlIndex]
    this.drop()
    this.lastError = `${url}: ${reason}`
    this.failures++
    this.reconnects++
    this.urlIndex = (this.urlIndex + 1) % this.opts.urls.length
    const base = Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.min(this.failures - 1, 16))
    const delay = Math.round(base * (0.8 + Math.random() * 0.4))
    this.opts.log.warn({ url, reason, retryInMs: delay }, 'revocation feed lost; reconnecting')
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      this.connect()
    }, delay)
    this.retryTimer.unref()
  }
}
