import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import pg from 'pg'
import { bearer, build, login, newUser, PASSWORD, waitFor, type App } from '../helper'
import { openStream } from '../support/sse'
import { bearerMatcher } from '../../plugins/app/revocation-feed'

// The revocation feed (docs/api.md "Revocation feed"), on one app: GET /revocations and the
// event stream. Many instances on one PostgreSQL: test/e2e/revocation-feed.test.ts.

const FEED_TOKEN = 'a-revocation-feed-token-for-tests-only-0123456789'
const feedAuth = bearer(FEED_TOKEN)

async function listening (t: Test, env: Record<string, string> = {}): Promise<{ app: App, url: string }> {
  const app = await build(t, { REVOCATION_FEED_TOKEN: FEED_TOKEN, COMPAT_ROUTES: 'true', RATE_LIMITS: 'off', ...env })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return { app, url: `http://127.0.0.1:${address.port}` }
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as
  { jti: string, sid: string, exp: number, sub: string }

t.test('access: 404 without REVOCATION_FEED_TOKEN, 401 on a missing or wrong token, no-store', async (t) => {
  const off = await build(t)
  for (const url of ['/revocations', '/revocations/stream']) {
    const res = await off.inject({ url, headers: feedAuth })
    t.equal(res.statusCode, 404, `${url} does not exist when the variable is unset`)
    t.same(Object.keys(res.json()).sort(), ['error', 'message', 'statusCode'])
  }

  const { app, url } = await listening(t)
  for (const path of ['/revocations', '/revocations/stream']) {
    for (const [what, headers] of [
      ['no token', {}],
      ['a token that differs in its last character', bearer(FEED_TOKEN.slice(0, -1) + 'X')],
      ['a prefix of the token', bearer(FEED_TOKEN.slice(0, 32))],
      ['an access token', bearer((await newUser(app)).tokens.access_token)],
      ['the token without the Bearer scheme', { authorization: FEED_TOKEN }]
    ] as const) {
      const res = await app.inject({ url: path, headers })
      t.equal(res.statusCode, 401, `${path}: ${what}`)
      t.equal(res.headers['www-authenticate'], 'Bearer')
      t.equal(res.headers['cache-control'], 'no-store')
      t.same(Object.keys(res.json()).sort(), ['error', 'message', 'statusCode'])
      t.notMatch(res.body, FEED_TOKEN.slice(0, 16), 'the token is never echoed')
    }
  }
  const poll = await app.inject({ url: '/revocations', headers: feedAuth })
  t.equal(poll.statusCode, 200)
  t.equal(poll.headers['cache-control'], 'no-store')
  const stream = await openStream(`${url}/revocations/stream`, feedAuth)
  t.teardown(() => stream.close())
  t.equal(stream.status, 200)
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  t.equal(stream.headers['cache-control'], 'no-store')
  await stream.next((e) => e.event === 'snapshot')
})

t.test('the token compare hashes both sides: equal-length inputs to timingSafeEqual whatever was sent', async (t) => {
  // timingSafeEqual throws on inputs of different lengths, so a compare of the raw strings
  // would throw (or have to branch on the length) for these; digests never do.
  const matches = bearerMatcher(FEED_TOKEN)
  t.equal(matches(`Bearer ${FEED_TOKEN}`), true)
  t.equal(matches(`bearer ${FEED_TOKEN}`), true, 'the scheme is case-insensitive')
  for (const header of [undefined, '', 'Bearer ', 'Bearer x', `Bearer ${FEED_TOKEN}x`, `Bearer ${'y'.repeat(5000)}`, FEED_TOKEN]) {
    t.equal(matches(header), false, `refused without throwing: ${String(header).slice(0, 20)}`)
  }
  const source = (await import('node:fs')).readFileSync(require.resolve('../../plugins/app/revocation-feed'), 'utf8')
  t.match(source, /timingSafeEqual\(createHash\('sha256'\)\.update\(given\)\.digest\(\), expected\)/, 'compared as digests, in constant time')
})

t.test('snapshot: every live entry and the position; poll without since is the same', async (t) => {
  const { app, url } = await listening(t)
  const a = await newUser(app)
  const b = await newUser(app)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(a.tokens.access_token) })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(b.tokens.access_token) })).statusCode, 204)
  const stream = await openStream(`${url}/revocations/stream`, feedAuth)
  t.teardown(() => stream.close())
  const snapshot = await stream.next((e) => e.event === 'snapshot')
  t.equal(stream.events[0].event, 'snapshot', 'the snapshot comes first')
  t.equal(snapshot.id, String(snapshot.data.position), 'its id is its position')
  t.ok(snapshot.data.position >= 2, 'the position covers both logouts')
  const ids = new Set(snapshot.data.entries.map((e: { id: string }) => e.id))
  t.ok(ids.has(claimsOf(a.tokens.access_token).sid) && ids.has(claimsOf(b.tokens.access_token).sid), 'both sessions are in it')
  const heartbeat = await stream.next((e) => e.event === 'heartbeat')
  t.equal(heartbeat.data.position, snapshot.data.position, 'the heartbeat names the position sent')
  t.ok(Math.abs(heartbeat.data.time - Date.now()) < 60_000, 'and the server time')

  const poll = (await app.inject({ url: '/revocations', headers: feedAuth })).json()
  t.equal(poll.snapshot, true)
  t.equal(poll.position, snapshot.data.position)
  t.same(new Set(poll.entries.map((e: { id: string }) => e.id)), ids)
})

t.test('every way of revoking reaches the stream, until no earlier than the token\'s exp', async (t) => {
  const { app, url } = await listening(t)
  const stream = await openStream(`${url}/revocations/stream`, feedAuth)
  t.teardown(() => stream.close())
  await stream.next((e) => e.event === 'snapshot')

  /** Runs `act` and waits for an entry covering the token (its jti or its sid). */
  const expectRevoked = async (what: string, token: string, act: () => Promise<number>, expected: number) => {
    const from = stream.events.length
    t.equal(await act(), expected, `${what}: answered`)
    const c = claimsOf(token)
    const event = await stream.next((e) => e.event === 'revoked' && e.data.entries.some((x: { id: string }) => x.id === c.jti || x.id === c.sid), 10_000, from)
    const entry = event.data.entries.find((x: { id: string }) => x.id === c.jti || x.id === c.sid)
    t.equal(entry.kind, entry.id === c.jti ? 'jti' : 'sid', `${what}: kind matches`)
    t.ok(entry.until >= c.exp * 1000, `${what}: until ${entry.until} >= exp ${c.exp * 1000}`)
    t.equal(event.id, String(event.data.position), `${what}: id is the position`)
  }
  const call = async (method: string, path: string, token?: string, payload?: object) =>
    (await app.inject({ method: method as 'GET', url: path, headers: token === undefined ? {} : bearer(token), payload })).statusCode

  const user = await newUser(app)
  let at = user.tokens.access_token
  await expectRevoked('logout', at, () => call('POST', '/auth/logout', at), 204)

  let tokens = await login(app, user.username)
  const other = await login(app, user.username)
  await expectRevoked('logout-all', other.access_token, () => call('POST', '/auth/logout', tokens.access_token, { scope: 'all' }), 204)

  tokens = await login(app, user.username)
  const victim = await login(app, user.username)
  const sid = claimsOf(victim.access_token).sid
  await expectRevoked('session delete', victim.access_token, () => call('DELETE', `/users/me/sessions/${sid}`, tokens.access_token), 204)

  const elsewhere = await login(app, user.username)
  await expectRevoked('password change', elsewhere.access_token,
    () => call('PATCH', '/users/me', tokens.access_token, { password: 'a new long passphrase', current_password: PASSWORD }), 200)

  const first = await login(app, user.username, 'a new long passphrase')
  const rotated = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first.refresh_token } })
  t.equal(rotated.statusCode, 200)
  at = rotated.json().access_token
  await expectRevoked('refresh reuse', at, () => call('POST', '/auth/refresh', undefined, { refresh_token: first.refresh_token }), 401)

  const compat = await login(app, user.username, 'a new long passphrase')
  await expectRevoked('compat renewal', compat.access_token, () => call('POST', '/validate_token', compat.access_token), 200)

  const doomed = await login(app, user.username, 'a new long passphrase')
  await expectRevoked('account deletion', doomed.access_token, () => call('DELETE', '/users/me', doomed.access_token), 204)

  const positions = stream.events.filter((e) => e.event === 'revoked').map((e) => e.data.position as number)
  t.ok(positions.every((p, i) => i === 0 || p > positions[i - 1]), 'positions only grow')
})

t.test('resume with Last-Event-ID: only what came after; a position the log does not hold gets a snapshot', async (t) => {
  const { app, url } = await listening(t)
  const first = await openStream(`${url}/revocations/stream`, feedAuth)
  t.teardown(() => first.close())
  await first.next((e) => e.event === 'snapshot')
  const users = [await newUser(app), await newUser(app), await newUser(app)]
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(users[0].tokens.access_token) })).statusCode, 204)
  const seen = await first.next((e) => e.event === 'revoked')
  first.close()
  for (const u of users.slice(1)) {
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(u.tokens.access_token) })).statusCode, 204)
  }
  const resumed = await openStream(`${url}/revocations/stream`, { ...feedAuth, 'last-event-id': seen.id! })
  t.teardown(() => resumed.close())
  const missed = users.slice(1).map((u) => claimsOf(u.tokens.access_token).sid)
  await resumed.next((e) => e.event === 'revoked' && e.data.entries.some((x: { id: string }) => x.id === missed[1]))
  t.notOk(resumed.events.some((e) => e.event === 'snapshot'), 'no snapshot when resuming')
  const revoked = resumed.events.filter((e) => e.event === 'revoked')
  t.same(revoked.flatMap((e) => e.data.entries.map((x: { id: string }) => x.id)), missed, 'exactly the two missed, in order')
  t.ok(Number(revoked[0].id) > Number(seen.id), 'after the position resumed from')

  const ahead = await openStream(`${url}/revocations/stream`, { ...feedAuth, 'last-event-id': String(Number(revoked[1].id) + 1000) })
  t.teardown(() => ahead.close())
  const snap = await ahead.next((e) => e.event === 'snapshot')
  t.equal(ahead.events[0], snap, 'a position ahead of the log: snapshot first')
  // Streams connecting within a second share one snapshot, so it may predate the last rows:
  // those then follow as revoked events, and the stream reaches the log's end either way.
  const last = Number(revoked[1].id)
  t.ok(snap.data.position <= last, 'the snapshot names a position the log holds')
  if (snap.data.position < last) await ahead.next((e) => e.event === 'revoked' && Number(e.id) >= last)

  // Prune the first rows (their tokens expired): a consumer at a position before them gets a snapshot.
  const pruned = await app.revocationsRepository.prune(Date.now() + 3600_000)
  t.ok(pruned.log >= 3, 'the log is empty after pruning')
  await newUser(app).then(async (u) => await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(u.tokens.access_token) }))
  const gone = await openStream(`${url}/revocations/stream`, { ...feedAuth, 'last-event-id': seen.id! })
  t.teardown(() => gone.close())
  t.equal((await gone.next(() => true)).event, 'snapshot', 'a pruned position: snapshot first')

  const bad = await app.inject({ url: '/revocations/stream', headers: { ...feedAuth, 'last-event-id': 'abc' } })
  t.equal(bad.statusCode, 400, 'a Last-Event-ID that is not a position')
})

t.test('GET /revocations?since: pages of at most 10,000 entries, snapshot when the position is gone, 400 on a bad since', async (t) => {
  const { app } = await listening(t)
  for (const since of ['-1', 'abc', '1.5', '', '1e3', ' 1']) {
    const res = await app.inject({ url: `/revocations?since=${encodeURIComponent(since)}`, headers: feedAuth })
    t.equal(res.statusCode, 400, `since=${JSON.stringify(since)}`)
    t.match(res.json().message, /since must be a non-negative integer/)
  }
  const start = (await app.inject({ url: '/revocations', headers: feedAuth })).json().position
  await seedLog(t, app, 25_000)
  const ids: string[] = []
  let since = start
  let pages = 0
  for (;;) {
    const page = (await app.inject({ url: `/revocations?since=${since}`, headers: feedAuth })).json()
    t.equal(page.snapshot, false)
    t.ok(page.entries.length <= 10_000)
    ids.push(...page.entries.map((e: { id: string }) => e.id))
    since = page.position
    pages++
    if (page.entries.length < 10_000) break
  }
  t.equal(pages, 3, 'three pages')
  t.equal(ids.length, 25_000, 'every entry once')
  t.equal(new Set(ids).size, 25_000)
  t.same(ids.slice(0, 3), ['seeded-1', 'seeded-2', 'seeded-3'], 'in position order')
  const last = (await app.inject({ url: `/revocations?since=${since}`, headers: feedAuth })).json()
  t.same(last, { position: since, entries: [], snapshot: false }, 'nothing after the last position')

  const ahead = (await app.inject({ url: `/revocations?since=${since + 5}`, headers: feedAuth })).json()
  t.equal(ahead.snapshot, true, 'a position ahead of the log: snapshot')
  t.equal(ahead.entries.filter((e: { id: string }) => e.id.startsWith('seeded-')).length, 25_000, 'with every live entry')
})

/**
 * Writes `n` live rows to the revocation log in one statement (test data, not revocations of
 * real tokens). On PostgreSQL the file's tests share a database: the rows go when `t` ends,
 * or the next app's start would load them all.
 */
async function seedLog (t: Test, app: App, n: number) {
  const until = Date.now() + 3600_000
  const insert = `INSERT INTO revocation_log (kind, target_id, until, created_at) SELECT 'jti', 'seeded-' || i, ${until}, ${Date.now()}`
  const { db } = app
  if (db.kind === 'postgres') {
    // a connection of its own: one statement may outlast the service's timeouts on a busy machine
    const client = new pg.Client({ connectionString: (app.config.database as { url: string }).url })
    await client.connect()
    try {
      await client.query(`${insert} FROM generate_series(1, ${n}) AS i ORDER BY i`)
    } finally {
      await client.end()
    }
    t.teardown(async () => {
      const cleaner = new pg.Client({ connectionString: (app.config.database as { url: string }).url })
      await cleaner.connect()
      await cleaner.query('DELETE FROM revocation_log WHERE target_id LIKE \'seeded-%\'').finally(() => cleaner.end())
    })
  } else {
    db.client.exec(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${n}) ${insert} FROM s ORDER BY i`)
  }
}

t.test('a consumer that stops reading is dropped (bounded memory), the others go on; it resumes', async (t) => {
  const { app, url } = await listening(t)
  const { port } = new URL(url)
  const healthy = await openStream(`${url}/revocations/stream`, feedAuth)
  t.teardown(() => healthy.close())
  await healthy.next((e) => e.event === 'snapshot')

  // A raw socket that asks for the stream and then reads nothing at all.
  const slow = connect(Number(port), '127.0.0.1')
  t.teardown(() => slow.destroy())
  await once(slow, 'connect')
  slow.write(`GET /revocations/stream HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\nauthorization: Bearer ${FEED_TOKEN}\r\n\r\n`)
  slow.pause()
  await waitFor(async () => app.revocationFeed!.hub.status().streams === 2, 10_000)

  // About 18 MB of events: more than the kernel's socket buffers and the 1 MiB a stream may hold.
  await seedLog(t, app, 150_000)
  await waitFor(async () => app.revocationFeed!.hub.status().dropped === 1, 60_000)
  t.equal(app.revocationFeed!.hub.status().streams, 1, 'the slow one is gone, the healthy one stays')
  await healthy.next((e) => e.event === 'revoked' && e.data.entries[0].id === 'seeded-150000', 60_000)
  t.pass('the healthy consumer got every event, to the last')

  // The dropped consumer reads what reached it, and resumes after its last event.
  slow.resume()
  let text = ''
  slow.setEncoding('utf8')
  slow.on('data', (chunk: string) => { text += chunk })
  await once(slow, 'close')
  const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => m[1])
  t.ok(ids.length > 0, `it had received ${ids.length} events`)
  const resumed = await openStream(`${url}/revocations/stream`, { ...feedAuth, 'last-event-id': ids[ids.length - 1] })
  t.teardown(() => resumed.close())
  const last = await resumed.next((e) => (e.event === 'revoked' || e.event === 'snapshot') &&
    e.data.entries.some((x: { id: string }) => x.id === 'seeded-150000'), 60_000)
  t.ok(last, `the resumed stream reaches the last entry (by ${last.event})`)
})

t.test('closing the app ends every stream and the server closes', async (t) => {
  const { app, url } = await listening(t)
  const streams = await Promise.all([1, 2, 3].map(async () => await openStream(`${url}/revocations/stream`, feedAuth)))
  for (const s of streams) await s.next((e) => e.event === 'heartbeat', 60_000)
  t.equal(app.revocationFeed!.hub.status().streams, 3)
  await app.close()
  for (const s of streams) await s.ended
  t.pass('app.close() resolved and every stream ended')
})
