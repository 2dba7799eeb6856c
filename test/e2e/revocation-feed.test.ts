import t from 'tap'
import pg from 'pg'
import { createPostgresDatabase, PASSWORD, REDIS_URL, redisPrefix, requireRedis, startServer, uniqueName } from '../helper'
import { openStream, type SseStream } from '../support/sse'

// The revocation feed across real processes: two instances on one PostgreSQL and one Redis,
// revocations racing on both, each stream checked against the log itself. Needs
// `npm run build` (it runs dist/src/server.js).

const FEED_TOKEN = 'e2e-revocation-feed-token-0123456789abcdef'
const feedAuth = { authorization: `Bearer ${FEED_TOKEN}` }

async function call (base: string, method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

const sidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { sid: string }).sid

t.test('two instances on one PostgreSQL: revocations racing on both reach both streams in log order, with no gap', async (t) => {
  await requireRedis(t)
  const databaseUrl = await createPostgresDatabase(t)
  const env = { DATABASE_URL: databaseUrl, REDIS_URL, REDIS_PREFIX: redisPrefix(), RATE_LIMITS: 'off', REVOCATION_FEED_TOKEN: FEED_TOKEN }
  const a = await startServer(t, env) // first: applies the migrations
  const b = await startServer(t, env)

  // Sessions on both instances, for 8 users.
  const users: string[] = []
  for (let i = 0; i < 8; i++) {
    const username = uniqueName('feed')
    const res = await call(a.url, 'POST', '/auth/register', { username, password: PASSWORD })
    if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`)
    users.push(username)
  }
  const tokens: Array<{ base: string, token: string }> = []
  for (const username of users) {
    for (const base of [a.url, b.url, a.url, b.url, a.url, b.url]) {
      const res = await call(base, 'POST', '/auth/login', { username, password: PASSWORD })
      if (res.status !== 200) throw new Error(`login: ${res.status}`)
      tokens.push({ base, token: res.body.access_token })
    }
  }

  const streams: Array<[string, SseStream]> = [
    ['A', await openStream(`${a.url}/revocations/stream`, feedAuth)],
    ['B', await openStream(`${b.url}/revocations/stream`, feedAuth)]
  ]
  for (const [, s] of streams) t.teardown(() => s.close())
  const start = await Promise.all(streams.map(async ([, s]) => (await s.next((e) => e.event === 'snapshot')).data.position as number))

  // Every token logged out at once, each on the other instance than the one that issued it
  // (half the logouts commit on A, half on B, all racing): 48 revocations in flight.
  // A 503 (the database or store too busy, on a loaded machine) says nothing was done and the
  // request may be repeated (docs/api.md): repeated, as a client would.
  const logout = async (base: string, token: string) => {
    for (let attempt = 0; ; attempt++) {
      const res = await call(base, 'POST', '/auth/logout', undefined, token)
      if (res.status !== 503 || attempt === 4) return res
    }
  }
  const answers = await Promise.all(tokens.map(async ({ base, token }) => await logout(base === a.url ? b.url : a.url, token)))
  t.same(answers.filter((r) => r.status !== 204), [], 'every logout answered 204')
  const sids = new Set(tokens.map(({ token }) => sidOf(token)))

  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  t.teardown(() => client.end())
  const log = (await client.query<{ seq: string, target_id: string }>(
    'SELECT seq, target_id FROM revocation_log WHERE seq > $1 ORDER BY seq', [Math.min(...start)])).rows
    .map((r) => ({ position: Number(r.seq), id: r.target_id }))
  t.same(new Set(log.map((r) => r.id)), sids, 'the log holds each revoked session')

  for (const [i, [name, stream]] of streams.entries()) {
    const expected = log.filter((r) => r.position > start[i])
    const last = expected[expected.length - 1].position
    await stream.next((e) => e.event === 'revoked' && e.data.position === last, 20_000)
    const revoked = stream.events.filter((e) => e.event === 'revoked')
    const got = revoked.map((e) => ({ position: Number(e.id), id: e.data.entries[0].id as string }))
    t.same(got, expected, `stream from ${name}: every row of the log after its snapshot, once, in position order`)
    t.ok(revoked.every((e) => e.data.position === Number(e.id)), `${name}: each id is its position`)
    const heartbeats = stream.events.filter((e) => e.event === 'heartbeat').map((e) => e.data.position as number)
    t.ok(heartbeats.every((p, k) => k === 0 || p >= heartbeats[k - 1]), `${name}: heartbeat positions never go back`)
  }
})
