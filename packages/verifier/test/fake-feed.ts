import Fastify, { type FastifyReply } from 'fastify'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose'
import { randomUUID } from 'node:crypto'
import type { FeedEntry } from '../src/blocklist'

/**
 * A stand-in for the auth service's side of the wire, speaking docs/api.md "Revocation
 * feed" to the letter: a JWKS and `GET /revocations/stream` (Bearer token, snapshot, revoked
 * events with `id:` = position, a heartbeat every `heartbeatMs`, Last-Event-ID resume). It can
 * also misbehave on purpose: stall (keep sockets open, send nothing), cut every stream, lie.
 */
export interface FakeFeed {
  url: string
  streamUrl: string
  jwksUrl: string
  token: string
  issuer: string
  audience: string
  /** entries live now, by position (the log) */
  log: Array<{ position: number, entries: FeedEntry[] }>
  /** Last-Event-ID header of each stream request, in order ('' when absent) */
  resumes: string[]
  /** open streams */
  streams: () => number
  revoke: (entries: FeedEntry[]) => number
  /** true: send nothing on any stream (new or old) and keep them open */
  stall: (on: boolean) => void
  /** ends every open stream */
  cut: () => void
  /** the next heartbeat claims a position this far ahead of the log */
  lieAhead: (by: number) => void
  sign: (claims?: JWTPayload, header?: Record<string, unknown>) => Promise<string>
  /** signs any header and payload as given (jose refuses to write some of the bad ones we need) */
  signRaw: (header: Record<string, unknown>, payload: Record<string, unknown>) => Promise<string>
  kid: string
  privateKey: CryptoKey
  close: () => Promise<void>
}

export async function startFakeFeed (opts: { heartbeatMs?: number, snapshot?: FeedEntry[], port?: number } = {}): Promise<FakeFeed> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true })
  const kid = randomUUID()
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' }
  const token = 'feed-token-' + randomUUID()
  const log: FakeFeed['log'] = []
  let position = 0
  if (opts.snapshot !== undefined && opts.snapshot.length > 0) log.push({ position: ++position, entries: opts.snapshot })
  const open = new Set<{ reply: FastifyReply, sent: number }>()
  const resumes: string[] = []
  let stalled = false
  let lie = 0

  const app = Fastify()
  app.get('/.well-known/jwks.json', async () => ({ keys: [jwk] }))

  const write = (s: { reply: FastifyReply, sent: number }, text: string) => { s.reply.raw.write(text) }
  const sendFrom = (s: { reply: FastifyReply, sent: number }) => {
    for (const row of log) {
      if (row.position <= s.sent) continue
      write(s, `event: revoked\nid: ${row.position}\ndata: ${JSON.stringify(row)}\n\n`)
      s.sent = row.position
    }
  }
  const heartbeat = (s: { reply: FastifyReply, sent: number }) => {
    const p = s.sent + lie
    lie = 0
    write(s, `event: heartbeat\ndata: ${JSON.stringify({ position: p, time: Date.now() })}\n\n`)
  }

  app.get('/revocations/stream', (request, reply) => {
    if (request.headers.authorization !== `Bearer ${token}`) {
      return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Invalid feed token' })
    }
    const last = request.headers['last-event-id']
    resumes.push(typeof last === 'string' ? last : '')
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    const s = { reply, sent: 0 }
    const resumeAt = typeof last === 'string' && /^\d+$/.test(last) ? Number(last) : null
    if (stalled) {
      // Nothing at all until resumed: a link that is up but carries nothing.
    } else if (resumeAt !== null && resumeAt <= position) {
      s.sent = resumeAt
      sendFrom(s)
      heartbeat(s)
    } else {
      const live = log.flatMap((r) => r.entries).filter((e) => e.until > Date.now())
      write(s, `event: snapshot\nid: ${position}\ndata: ${JSON.stringify({ position, entries: live })}\n\n`)
      s.sent = position
      heartbeat(s)
    }
    open.add(s)
    reply.raw.on('close', () => open.delete(s))
  })

  const beat = setInterval(() => {
    if (stalled) return
    for (const s of open) heartbeat(s)
  }, opts.heartbeatMs ?? 1000)

  await app.listen({ port: opts.port ?? 0, host: '127.0.0.1' })
  const address = app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const issuer = 'https://auth.test'
  const audience = 'api.test'

  return {
    url,
    streamUrl: `${url}/revocations/stream`,
    jwksUrl: `${url}/.well-known/jwks.json`,
    token,
    issuer,
    audience,
    log,
    resumes,
    privateKey,
    streams: () => open.size,
    revoke (entries) {
      log.push({ position: ++position, entries })
      if (!stalled) for (const s of open) sendFrom(s)
      return position
    },
    stall (on) {
      stalled = on
    },
    cut () {
      for (const s of open) s.reply.raw.destroy()
      open.clear()
    },
    lieAhead (by) { lie = by },
    kid,
    async signRaw (header, payload) {
      const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
      const sig = await crypto.subtle.sign('Ed25519', privateKey, new TextEncoder().encode(input))
      return `${input}.${Buffer.from(sig).toString('base64url')}`
    },
    async sign (claims = {}, header = {}) {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({ sub: randomUUID(), sid: randomUUID(), jti: randomUUID(), iss: issuer, aud: audience, iat: now, exp: now + 900, ...claims })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid, ...header })
        .sign(privateKey)
    },
    async close () {
      clearInterval(beat)
      for (const s of open) s.reply.raw.destroy()
      await app.close()
    }
  }
}

/** Polls `check` until it is true (or throws after `ms`): tests wait for conditions, not for time. */
export async function until (check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
