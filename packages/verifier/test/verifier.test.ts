import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { createServer } from 'node:net'
import { randomUUID, generateKeyPairSync } from 'node:crypto'
import { SignJWT } from 'jose'
import verifier, { type VerifierOptions } from '../src/index'
import { startFakeFeed, until as untilCond, type FakeFeed } from './fake-feed'

async function downstream (t: Test, feed: FakeFeed, extra: Partial<VerifierOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(verifier, {
    issuer: feed.issuer,
    audience: feed.audience,
    jwksUrl: feed.jwksUrl,
    feedUrl: feed.streamUrl,
    feedToken: feed.token,
    ...extra
  })
  app.get('/me', async (request) => ({ sub: request.auth.sub, sid: request.auth.sid }))
  app.get('/open', { config: { verifier: { onStale: 'open' } } }, async (request) => ({ sub: request.auth.sub }))
  app.get('/custom', {
    config: {
      verifier: {
        onStale: async (_request, reply) => { await reply.code(299).send({ stale: true }) }
      }
    }
  }, async () => ({ stale: false }))
  app.get('/health', { config: { verifier: false } }, async (request) => ({ ok: true, auth: request.auth }))
  t.teardown(() => app.close())
  return app
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

t.test('verifies the token and sets request.auth; status() reports the snapshot', async (t) => {
  const feed = await startFakeFeed()
  t.teardown(feed.close)
  const app = await downstream(t, feed)
  const sub = randomUUID()
  const sid = randomUUID()
  const res = await app.inject({ url: '/me', headers: bearer(await feed.sign({ sub, sid })) })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { sub, sid })
  const status = app.verifier.status()
  t.equal(status.connected, true)
  t.equal(status.position, 0)
  t.equal(status.entries, 0)
  t.ok(status.lastEventAgeMs !== null && status.lastEventAgeMs < 3000)
})

t.test('refuses bad tokens with 401, the contract shape and WWW-Authenticate', async (t) => {
  const feed = await startFakeFeed()
  t.teardown(feed.close)
  const app = await downstream(t, feed)
  const now = Math.floor(Date.now() / 1000)
  const good = await feed.sign()
  const [h, p] = good.split('.')
  const other = generateKeyPairSync('ed25519').privateKey
  const claims = { sub: 'u', sid: 's', jti: 'j', iss: feed.issuer, aud: feed.audience, iat: now, exp: now + 60 }
  const cases: Array<[string, Record<string, string>]> = [
    ['no header', {}],
    ['not bearer', { authorization: `Basic ${good}` }],
    ['garbage', bearer('not-a-jwt')],
    ['wrong issuer', bearer(await feed.sign({ iss: 'https://evil.test' }))],
    ['wrong audience', bearer(await feed.sign({ aud: 'other' }))],
    ['expired', bearer(await feed.sign({ exp: now - 5, iat: now - 100 }))],
    ['nbf in the future', bearer(await feed.sign({ nbf: now + 600 }))],
    ['wrong typ', bearer(await feed.sign({}, { typ: 'JWT' }))],
    ['no sid', bearer(await feed.sign({ sid: undefined }))],
    ['stripped signature', bearer(`${h}.${p}.`)],
    ['alg none', bearer(`${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.x`)],
    ['unknown crit', bearer(await feed.signRaw({ alg: 'EdDSA', typ: 'at+jwt', kid: feed.kid, crit: ['x-unknown'], 'x-unknown': 1 }, claims))],
    ['embedded jwk', bearer(await feed.sign({}, { jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' } }))],
    ['jku', bearer(await feed.sign({}, { jku: 'https://evil.test/jwks' }))],
    ['expired (raw)', bearer(await feed.signRaw({ alg: 'EdDSA', typ: 'at+jwt', kid: feed.kid }, { ...claims, exp: now - 1 }))],
    ['no kid', bearer(await feed.signRaw({ alg: 'EdDSA', typ: 'at+jwt' }, claims))],
    ['sub not a string', bearer(await feed.signRaw({ alg: 'EdDSA', typ: 'at+jwt', kid: feed.kid }, { ...claims, sub: 7 }))],
    ['signed by another key, same kid', bearer(await new SignJWT({ sub: 'x', sid: 's', jti: 'j', iss: feed.issuer, aud: feed.audience, iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: JSON.parse(Buffer.from(h, 'base64url').toString()).kid }).sign(other))],
    ['HS256 keyed with anything', bearer(await new SignJWT({ sub: 'x', sid: 's', jti: 'j', iss: feed.issuer, aud: feed.audience, iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(new TextEncoder().encode('x'.repeat(32))))]
  ]
  for (const [name, headers] of cases) {
    const res = await app.inject({ url: '/me', headers })
    t.equal(res.statusCode, 401, name)
    t.match(res.headers['www-authenticate'], /^Bearer/, `${name}: WWW-Authenticate`)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['error', 'message', 'statusCode'], `${name}: shape`)
    t.equal(body.error, 'Unauthorized')
    t.notMatch(res.body, good.slice(-20), `${name}: no token in the message`)
  }
  t.equal((await app.inject({ url: '/me', headers: bearer(good) })).statusCode, 200, 'the good one passes')
  const raw = await feed.signRaw({ alg: 'EdDSA', typ: 'at+jwt', kid: feed.kid }, claims)
  t.equal((await app.inject({ url: '/me', headers: bearer(raw) })).statusCode, 200, 'signRaw makes good tokens: the refusals above are for the flaw')
  const health = await app.inject({ url: '/health' })
  t.equal(health.statusCode, 200, 'verifier: false route needs no token')
  t.same(health.json(), { ok: true, auth: null })
})

t.test('refuses tokens whose jti or sid is in the snapshot or a later revoked event', async (t) => {
  const until = Date.now() + 900_000
  const revokedJti = randomUUID()
  const revokedSid = randomUUID()
  const feed = await startFakeFeed({ snapshot: [{ kind: 'jti', id: revokedJti, until }, { kind: 'sid', id: revokedSid, until }] })
  t.teardown(feed.close)
  const app = await downstream(t, feed)
  t.equal(app.verifier.status().entries, 2)
  const byJti = await app.inject({ url: '/me', headers: bearer(await feed.sign({ jti: revokedJti })) })
  t.equal(byJti.statusCode, 401)
  t.equal(byJti.json().message, 'Token revoked')
  t.equal((await app.inject({ url: '/me', headers: bearer(await feed.sign({ sid: revokedSid })) })).statusCode, 401)

  const sid = randomUUID()
  const token = await feed.sign({ sid })
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).statusCode, 200)
  const position = feed.revoke([{ kind: 'sid', id: sid, until }])
  await untilCond(() => app.verifier.status().position === position, 'revoked event applied')
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).statusCode, 401)
  t.equal(app.verifier.status().entries, 3)
  // An entry already past its `until` is never held.
  feed.revoke([{ kind: 'jti', id: 'old', until: Date.now() - 1 }])
  await untilCond(() => app.verifier.status().position === position + 1, 'second event applied')
  t.equal(app.verifier.status().entries, 3)
})

t.test('stale blocklist: closed answers 503 + Retry-After, open serves and counts, a function decides; all recover', async (t) => {
  const feed = await startFakeFeed({ heartbeatMs: 100 })
  t.teardown(feed.close)
  const registry = new Registry()
  const app = await downstream(t, feed, { staleAfter: 600, registry })
  const token = await feed.sign()
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).statusCode, 200)

  feed.stall(true)
  await untilCond(async () => (await app.inject({ url: '/me', headers: bearer(token) })).statusCode === 503, 'closed route refuses')
  const closed = await app.inject({ url: '/me', headers: bearer(token) })
  t.equal(closed.statusCode, 503)
  t.equal(closed.headers['retry-after'], '1')
  t.same(Object.keys(closed.json()).sort(), ['error', 'message', 'statusCode'])
  t.ok(app.verifier.status().lastEventAgeMs! >= 600)
  t.equal((await app.inject({ url: '/open', headers: bearer(token) })).statusCode, 200, 'open route serves')
  t.equal((await app.inject({ url: '/open' })).statusCode, 401, 'open route still needs a valid token')
  const custom = await app.inject({ url: '/custom', headers: bearer(token) })
  t.equal(custom.statusCode, 299, 'the function answered')
  const metrics = await registry.getSingleMetricAsString('verifier_requests_total')
  t.match(metrics, /verifier_requests_total\{outcome="stale_open"\} 1/)
  t.match(metrics, /verifier_requests_total\{outcome="stale_closed"\} [1-9]/)

  feed.stall(false)
  await untilCond(async () => (await app.inject({ url: '/me', headers: bearer(token) })).statusCode === 200, 'recovers by itself')
  t.equal(app.verifier.status().connected, true)
  t.equal((await app.inject({ url: '/custom', headers: bearer(token) })).json().stale, false)
  t.match(await registry.getSingleMetricAsString('verifier_feed_connected'), /verifier_feed_connected 1/)
})

t.test('a lost stream resumes with Last-Event-ID; revocations made while away are applied', async (t) => {
  const feed = await startFakeFeed({ heartbeatMs: 200 })
  t.teardown(feed.close)
  const app = await downstream(t, feed)
  const first = feed.revoke([{ kind: 'jti', id: randomUUID(), until: Date.now() + 60_000 }])
  await untilCond(() => app.verifier.status().position === first, 'first applied')
  feed.cut()
  const sid = randomUUID()
  const token = await feed.sign({ sid })
  const later = feed.revoke([{ kind: 'sid', id: sid, until: Date.now() + 60_000 }])
  await untilCond(() => app.verifier.status().position === later, 'resumed and caught up')
  t.same(feed.resumes, ['', String(first)], 'second connection resumed after the last position applied')
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).statusCode, 401)
})

t.test('a heartbeat ahead of the applied position makes the client resume instead of trusting it', async (t) => {
  const feed = await startFakeFeed({ heartbeatMs: 100 })
  t.teardown(feed.close)
  await downstream(t, feed)
  feed.lieAhead(5)
  await untilCond(() => feed.resumes.length === 2, 'reconnected')
  t.equal(feed.resumes[1], '0')
})

t.test('feedUrl list: a dead first URL is passed over for the next', async (t) => {
  const feed = await startFakeFeed({ heartbeatMs: 100 })
  t.teardown(feed.close)
  const dead = await closedPortUrl()
  const app = await downstream(t, feed, { feedUrl: [dead, feed.streamUrl] })
  t.equal(app.verifier.status().connected, true)
  t.equal(feed.resumes.length, 1)
})

t.test('start fails with a clear message when no snapshot comes in time (wrong feed token)', async (t) => {
  const feed = await startFakeFeed()
  t.teardown(feed.close)
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(verifier, {
    issuer: feed.issuer,
    audience: feed.audience,
    jwksUrl: feed.jwksUrl,
    feedUrl: feed.streamUrl,
    feedToken: 'wrong-' + feed.token,
    startTimeout: 1000
  })
  const message = await app.ready().then(() => 'started', (err: Error) => err.message)
  t.match(message, /no revocation snapshot from .*revocations\/stream within 1000 ms \(last error: .*401/)
  t.notMatch(message, feed.token, 'the feed token is not in the message')
})

t.test('options are checked at registration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(verifier, { issuer: 'i', audience: '', jwksUrl: 'http://x/j', feedUrl: 'http://x/s', feedToken: 't' })
  t.match(await app.ready().then(() => 'started', (err: Error) => err.message), /option audience must be a non-empty string/)
})

async function closedPortUrl (): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}/revocations/stream`
}

t.test('a remembered token is refused once it expires, and cacheSize 0 verifies every time', async (t) => {
  const feed = await startFakeFeed()
  t.teardown(feed.close)
  const app = await downstream(t, feed)
  const exp = Math.floor(Date.now() / 1000) + 2
  const token = await feed.sign({ exp })
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).statusCode, 200, 'verified and remembered')
  await untilCond(() => Date.now() >= exp * 1000, 'the token expired', 5000)
  const res = await app.inject({ url: '/me', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().message, 'Token expired')

  const uncached = await downstream(t, feed, { cacheSize: 0 })
  const good = await feed.sign()
  for (let i = 0; i < 3; i++) t.equal((await uncached.inject({ url: '/me', headers: bearer(good) })).statusCode, 200)
})
