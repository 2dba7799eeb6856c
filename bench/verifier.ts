/**
 * The verifier plugin's cost: one downstream route behind @auth-service/fastify-verifier
 * against the same route behind @fastify/jwt verifying with the same JWKS (no revocation
 * check). Runnable alone (`npx tsx bench/verifier.ts [--quick]`) and called by bench/run.ts.
 *
 * A process plays the auth service's part (JWKS, a revocation feed with a snapshot of 10,000
 * entries and a heartbeat a second), the bench process drives the load, and each downstream
 * app is a process of its own. Runs alternate J P J P J: each plugin run is divided by the mean of the
 * @fastify/jwt runs just before and after it, so drift on a shared machine cancels.
 */
import { createServer, type Server, type ServerResponse } from 'node:http'
import { randomUUID, createPublicKey } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { freePort, startChild, stopAll, type Child } from './lib/procs'
import { load, type LoadResult, type Req } from './lib/load'

const ISSUER = 'auth-service'
const AUDIENCE = 'auth-service'
const FEED_TOKEN = 'bench-feed-token-' + randomUUID()

export interface VerifierBenchRow {
  name: 'fastify-jwt' | 'verifier'
  rps: number
  p50_ms: number
  p99_ms: number
  cpu_ms_per_req: number | null
  ratio: number | null
  errors: number
  unexpected: number
}

/**
 * The auth service's side: JWKS and a feed that never revokes during the run. A process of
 * its own: in the load generator's, heartbeats wait behind autocannon and the apps go stale.
 */
async function startAuthStandIn (jwk: object): Promise<{ url: string, child: Child }> {
  const port = await freePort()
  const child = startChild('auth', process.execPath, ['--import', 'tsx', __filename, '--serve', 'auth'], {
    PATH: process.env.PATH, PORT: String(port), JWK: JSON.stringify(jwk), FEED_TOKEN
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exited() || Date.now() > deadline) throw new Error(`auth stand-in did not start:\n${child.output()}`)
    try {
      if ((await fetch(`${url}/.well-known/jwks.json`)).status === 200) return { url, child }
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function serveAuth (jwk: object, feedToken: string, port: number): Promise<Server> {
  const entries = Array.from({ length: 10_000 }, () => ({ kind: 'sid', id: randomUUID(), until: Date.now() + 900_000 }))
  const streams = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
    } else if (req.url === '/revocations/stream' && req.headers.authorization === `Bearer ${feedToken}`) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      res.write(`event: snapshot\nid: 1\ndata: ${JSON.stringify({ position: 1, entries })}\n\n`)
      streams.add(res)
      res.on('close', () => streams.delete(res))
    } else {
      res.writeHead(404).end()
    }
  })
  const beat = setInterval(() => {
    for (const s of streams) s.write(`event: heartbeat\ndata: {"position":1,"time":${Date.now()}}\n\n`)
  }, 1000)
  beat.unref()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return server
}

/** One downstream app (this file with --serve), the same route and body either way. */
async function serve (kind: 'verifier' | 'fastify-jwt'): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: { level: 'warn' } })
  const authUrl = process.env.AUTH_URL!
  if (kind === 'verifier') {
    // Untyped on purpose: the package's `request.auth` would meet the service's own in this
    // compilation (the bench is type-checked with the service).
    const { verifier } = require('../packages/verifier/src/index.ts')
    await app.register(verifier, {
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUrl: `${authUrl}/.well-known/jwks.json`,
      feedUrl: `${authUrl}/revocations/stream`,
      feedToken: process.env.FEED_TOKEN!,
      algorithms: ['EdDSA']
    })
  } else {
    const { default: jwt } = await import('@fastify/jwt')
    // The same JWKS, read once at start; keys by kid, as @fastify/jwt's docs show for a key set.
    const { keys } = await (await fetch(`${authUrl}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> }
    const pems = new Map(keys.map((k) => [k.kid, createPublicKey({ key: k as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string]))
    await app.register(jwt, {
      secret: (async (_request: unknown, token: { header: { kid?: string } }) => pems.get(token.header.kid ?? '') ?? '') as never,
      decode: { complete: true },
      // --jwt-cache: fast-jwt's own verified-token cache, as the plugin has one (default off in @fastify/jwt)
      verify: { algorithms: ['EdDSA'], allowedIss: ISSUER, allowedAud: AUDIENCE, cache: process.env.JWT_CACHE === '1' }
    })
    app.addHook('onRequest', async (request, reply) => {
      try { await request.jwtVerify() } catch { return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Invalid token' }) }
    })
  }
  app.get('/resource', {
    schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer' } } } } }
  }, async () => ({ ok: true, n: 42 }))
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
}

async function startApp (kind: 'verifier' | 'fastify-jwt', authUrl: string, jwtCache: boolean): Promise<{ child: Child, url: string }> {
  const port = await freePort()
  const child = startChild(kind, process.execPath, ['--import', 'tsx', __filename, '--serve', kind], {
    PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(port), AUTH_URL: authUrl, FEED_TOKEN, JWT_CACHE: jwtCache ? '1' : '0'
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exited() || Date.now() > deadline) throw new Error(`${kind} did not start:\n${child.output()}`)
    try {
      if ((await fetch(`${url}/resource`)).status === 401) return { child, url }
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export async function verifierBench (opts: { quick: boolean, jwtCache?: boolean, log: (line: string) => void }): Promise<{ rows: VerifierBenchRow[], text: string }> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA')
  const kid = randomUUID()
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' }
  const auth = await startAuthStandIn(jwk)
  try {
    const now = Math.floor(Date.now() / 1000)
    const tokens = await Promise.all(Array.from({ length: 512 }, () => new SignJWT({ sid: randomUUID(), jti: randomUUID() })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid })
      .setSubject(randomUUID()).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(now).setExpirationTime(now + 3600)
      .sign(privateKey)))
    const jwtApp = await startApp('fastify-jwt', auth.url, opts.jwtCache ?? false)
    const plugin = await startApp('verifier', auth.url, false)
    for (const target of [jwtApp, plugin]) {
      // Both must accept a good token before anything is measured.
      const probe = await fetch(`${target.url}/resource`, { headers: { authorization: `Bearer ${tokens[0]}` } })
      if (probe.status !== 200) throw new Error(`${target.child.name} refused a good token: ${probe.status} ${await probe.text()}\n${target.child.output()}`)
    }
    const connections = opts.quick ? 16 : 32
    const requests = (c: number): Req[] => tokens.map((_, i) => ({
      method: 'GET', path: '/resource', headers: { authorization: `Bearer ${tokens[(i + c * 16) % tokens.length]}` }
    }))
    const measure = async (target: { child: Child, url: string }) => load({
      url: target.url,
      connections,
      warmup: 1,
      duration: opts.quick ? 2 : 5,
      requests,
      cpuPids: () => [target.child.pid]
    })
    const runs: Array<{ name: 'fastify-jwt' | 'verifier', r: LoadResult }> = []
    for (const target of [jwtApp, plugin, jwtApp, plugin, jwtApp]) {
      const name = target === plugin ? 'verifier' : 'fastify-jwt'
      const r = await measure(target)
      opts.log(`  ${name}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99_ms} ms, CPU ${r.cpu_ms_per_req?.toFixed(3) ?? '-'} ms/req`)
      runs.push({ name, r })
    }
    const rows: VerifierBenchRow[] = runs.map(({ name, r }, i) => {
      const ref = name === 'verifier' ? (runs[i - 1].r.rps + runs[i + 1].r.rps) / 2 : null
      return {
        name,
        rps: r.rps,
        p50_ms: r.p50_ms,
        p99_ms: r.p99_ms,
        cpu_ms_per_req: r.cpu_ms_per_req,
        ratio: ref === null ? null : r.rps / ref,
        errors: r.errors,
        unexpected: r.unexpected
      }
    })
    const pluginRows = rows.filter((r) => r.name === 'verifier')
    const ratio = pluginRows.reduce((a, r) => a + r.ratio!, 0) / pluginRows.length
    const cpu = (name: string) => {
      const c = rows.filter((r) => r.name === name).map((r) => r.cpu_ms_per_req ?? 0)
      return c.reduce((a, b) => a + b, 0) / c.length
    }
    const text = [
      `verifier plugin vs @fastify/jwt${opts.jwtCache ? ' with cache: true' : ''} (same route, same JWKS, EdDSA, 512 tokens; J P J P J)`,
      'app          req/s  p50 ms  p99 ms  CPU ms/req  ratio  errors  unexpected',
      ...rows.map((r) => `${r.name.padEnd(11)} ${r.rps.toFixed(0).padStart(6)}  ${r.p50_ms.toFixed(2).padStart(6)}  ${r.p99_ms.toFixed(2).padStart(6)}  ` +
        `${(r.cpu_ms_per_req?.toFixed(3) ?? '-').padStart(10)}  ${(r.ratio?.toFixed(2) ?? '-').padStart(5)}  ${String(r.errors).padStart(6)}  ${String(r.unexpected).padStart(10)}`),
      `verifier / @fastify/jwt: ${ratio.toFixed(2)} of the req/s (target >= 0.95: ${ratio >= 0.95 ? 'met' : 'NOT met'}); ` +
        `CPU ${cpu('verifier').toFixed(3)} vs ${cpu('fastify-jwt').toFixed(3)} ms/req`
    ].join('\n')
    await jwtApp.child.stop()
    await plugin.child.stop()
    return { rows, text }
  } finally {
    await auth.child.stop()
  }
}

if (require.main === module) {
  const serveAt = process.argv.indexOf('--serve')
  if (serveAt !== -1 && process.argv[serveAt + 1] === 'auth') {
    serveAuth(JSON.parse(process.env.JWK!), process.env.FEED_TOKEN!, Number(process.env.PORT)).catch((err) => { console.error(err); process.exit(1) })
  } else if (serveAt !== -1) {
    serve(process.argv[serveAt + 1] as 'verifier' | 'fastify-jwt').catch((err) => { console.error(err); process.exit(1) })
  } else {
    verifierBench({ quick: process.argv.includes('--quick'), jwtCache: process.argv.includes('--jwt-cache'), log: (line) => console.log(line) })
      .then(({ text }) => { console.log(text) })
      .catch(async (err) => { console.error(err); await stopAll(); process.exit(1) })
  }
}
