import { request, type ClientRequest, type IncomingMessage } from 'node:http'

// A small Server-Sent Events reader for the revocation feed's tests: it keeps every event
// and waits for conditions on them (never a fixed sleep).

export interface SseEvent {
  event: string
  id: string | undefined
  data: any
}

export interface SseStream {
  status: number
  headers: IncomingMessage['headers']
  events: SseEvent[]
  /** resolves with the first event (from `from` on) that matches; rejects after `ms` or when the stream ends first */
  next: (match: (e: SseEvent) => boolean, ms?: number, from?: number) => Promise<SseEvent>
  /** resolves once the server ended or cut the stream */
  ended: Promise<void>
  close: () => void
  req: ClientRequest
  res: IncomingMessage
}

export async function openStream (url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      const events: SseEvent[] = []
      const waiters = new Set<() => void>()
      let done = false
      let endedResolve!: () => void
      const ended = new Promise<void>((resolve) => { endedResolve = resolve })
      const finish = () => {
        if (done) return
        done = true
        endedResolve()
        for (const w of waiters) w()
      }
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const e: SseEvent = { event: 'message', id: undefined, data: undefined }
          const data: string[] = []
          for (const line of block.split('\n')) {
            const colon = line.indexOf(':')
            const field = colon === -1 ? line : line.slice(0, colon)
            const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
            if (field === 'event') e.event = value
            else if (field === 'id') e.id = value
            else if (field === 'data') data.push(value)
          }
          const text = data.join('\n')
          try { e.data = JSON.parse(text) } catch { e.data = text }
          events.push(e)
        }
        for (const w of waiters) w()
      })
      res.on('end', finish)
      res.on('close', finish)
      res.on('error', finish)
      const next = async (match: (e: SseEvent) => boolean, ms = 10_000, from = 0) => await new Promise<SseEvent>((resolve, reject) => {
        const check = () => {
          const found = events.slice(from).find(match)
          if (found !== undefined) {
            waiters.delete(check)
            clearTimeout(timer)
            resolve(found)
          } else if (done) {
            waiters.delete(check)
            clearTimeout(timer)
            reject(new Error(`stream ended without the event; got ${events.map((x) => x.event).join(',')}`))
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no such event within ${ms} ms; got ${events.map((x) => `${x.event}:${x.id ?? ''}`).join(',')}`))
        }, ms)
        waiters.add(check)
        check()
      })
      resolve({ status: res.statusCode!, headers: res.headers, events, next, ended, close: () => { req.destroy() }, req, res })
    })
    req.on('error', reject)
    req.end()
  })
}
