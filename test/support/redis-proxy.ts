import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'

/**
 * A TCP proxy between service processes and a Redis server, for fault tests: it can stall
 * every link without closing it, cut a connection on the command that carries a given text,
 * and count the commands clients send. It carries any number of connections at once.
 */
export interface RedisProxy {
  port: number
  /** the REDIS_URL a service should be given to reach Redis through the proxy */
  url: string
  /** Stops forwarding in both directions; every socket stays open and bytes are kept. */
  stall (): void
  /** Forwards what was kept, in order, and carries on as before. */
  resume (): void
  /**
   * The next time a client sends a command with an argument containing `text` (on any
   * connection), that connection is destroyed on both sides and the command never reaches
   * Redis (the chunk that completes it is not forwarded). One shot. With `downMs`, the link
   * then stays down that long: new connections are dropped at once. With `unless`, a command
   * of that name (e.g. 'MGET', a read) goes through.
   */
  cutOn (text: string, opts?: { downMs?: number, unless?: string }): void
  /**
   * A failover: new connections go to `target` from now on, and every open link is cut (as
   * when the old server dies), so clients reconnect to the new one.
   */
  retarget (target: { host?: string, port: number }): void
  /** How many commands named `name` (case-insensitive) clients have sent so far. */
  count (name: string): number
  /**
   * Counts, from now on, the commands with an argument containing `text` (e.g. a token's
   * `sid:<id>` key: what an instance asks Redis about that token); the answer reads the count.
   */
  watch (text: string): () => number
  close (): Promise<void>
}

const CRLF = Buffer.from('\r\n')

/**
 * Reads commands (name, then arguments) out of a client's RESP stream
 * (`*N\r\n$len\r\nNAME\r\n...`), whatever the chunking: a chunk may hold many pipelined
 * commands, and a command may span chunks.
 */
export function commandReader (onCommand: (name: string, args: string[]) => void) {
  let pending: Buffer = Buffer.alloc(0)
  // Each returns the offset just past what it read, or -1 when more bytes are needed.
  const line = (at: number) => {
    const end = pending.indexOf(CRLF, at)
    return end === -1 ? null : { text: pending.toString('latin1', at, end), next: end + 2 }
  }
  const one = (at: number): number => {
    if (pending[at] !== 0x2a) { // not `*`: an inline command, "NAME arg ...\r\n"
      const l = line(at)
      if (l === null) return -1
      const [name, ...args] = l.text.trim().split(/\s+/)
      if (name) onCommand(name, args)
      return l.next
    }
    const header = line(at)
    if (header === null) return -1
    const n = Number(header.text.slice(1))
    let pos = header.next
    const parts: string[] = []
    for (let i = 0; i < n; i++) {
      const len = line(pos)
      if (len === null) return -1
      const size = Number(len.text.slice(1))
      if (pending.length < len.next + size + 2) return -1
      parts.push(pending.toString('latin1', len.next, len.next + size))
      pos = len.next + size + 2
    }
    if (parts.length > 0) onCommand(parts[0], parts.slice(1))
    return pos
  }
  return (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    let at = 0
    while (at < pending.length) {
      const next = one(at)
      if (next === -1) break
      at = next
    }
    pending = pending.subarray(at)
  }
}

/** Writes to `to` (node keeps writes made while it connects), or keeps the bytes, in order, while stalled. */
function pipe (to: Socket) {
  const kept: Array<Buffer | 'end'> = []
  const deliver = (item: Buffer | 'end') => { if (item === 'end') to.end(); else to.write(item) }
  return {
    send (item: Buffer | 'end', stalled: boolean) {
      if (stalled || kept.length > 0) kept.push(item)
      else deliver(item)
    },
    flush () {
      while (kept.length > 0) deliver(kept.shift()!)
    }
  }
}

export async function startRedisProxy (first: { host?: string, port: number }): Promise<RedisProxy> {
  let target = { host: first.host ?? '127.0.0.1', port: first.port }
  let stalled = false
  let cut: { text: string, downMs: number, unless?: string } | null = null
  let downUntil = 0
  const counts = new Map<string, number>()
  const watched = new Map<string, number>()
  const links = new Set<{ client: Socket, server: Socket, flush: () => void }>()

  const proxy = createServer((client) => {
    if (Date.now() < downUntil) return client.destroy()
    const server = connect(target.port, target.host)
    const up = pipe(server)
    const down = pipe(client)
    const link = { client, server, flush: () => { up.flush(); down.flush() } }
    links.add(link)
    // Set when a command completed by the chunk being read is the one to cut on.
    let cutHere = false
    const read = commandReader((name, args) => {
      const key = name.toUpperCase()
      counts.set(key, (counts.get(key) ?? 0) + 1)
      for (const [text, n] of watched) if (args.some((a) => a.includes(text))) watched.set(text, n + 1)
      if (cut !== null && key !== cut.unless?.toUpperCase() && args.some((a) => a.includes(cut!.text))) cutHere = true
    })
    const destroy = () => {
      links.delete(link)
      client.destroy()
      server.destroy()
    }
    client.on('data', (chunk: Buffer) => {
      read(chunk)
      if (cutHere && cut !== null) {
        // Redis has at most the start of that command, which it never runs.
        downUntil = Date.now() + cut.downMs
        cut = null
        return destroy()
      }
      up.send(chunk, stalled)
    })
    server.on('data', (chunk: Buffer) => down.send(chunk, stalled))
    client.on('end', () => up.send('end', stalled))
    server.on('end', () => down.send('end', stalled))
    client.on('close', destroy)
    server.on('close', destroy)
    client.on('error', () => {})
    server.on('error', () => {})
  })
  proxy.listen(0, '127.0.0.1')
  await once(proxy, 'listening')
  const { port } = proxy.address() as { port: number }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stall () { stalled = true },
    resume () {
      stalled = false
      for (const link of links) link.flush()
    },
    cutOn (text, { downMs = 0, unless } = {}) { cut = { text, downMs, unless } },
    retarget (to) {
      target = { host: to.host ?? '127.0.0.1', port: to.port }
      for (const link of [...links]) { link.client.destroy(); link.server.destroy() }
      links.clear()
    },
    count: (name) => counts.get(name.toUpperCase()) ?? 0,
    watch (text) {
      watched.set(text, watched.get(text) ?? 0)
      const from = watched.get(text)!
      return () => watched.get(text)! - from
    },
    async close () {
      for (const link of [...links]) { link.client.destroy(); link.server.destroy() }
      links.clear()
      proxy.close()
      await once(proxy, 'close')
    }
  }
}
