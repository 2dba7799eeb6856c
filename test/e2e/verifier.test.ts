import t from 'tap'
import { uniqueName } from '../helper'
import { call, register, session, sleep } from '../support/http'
import { startRedisProxy } from '../support/redis-proxy'
import { distribution, refusedAfter, startFleet, streamOf } from '../support/fleet'

// The verifier plugin against the real service (issue 17): two service instances (A, B) on
// one database and Redis, downstream apps installed from the plugin's packed tarball, every
// one a process of its own. docs/api.md, "Revocation feed".

const NEW_PASSWORD = 'another passphrase entirely'

t.test('one fleet: revocations, a stalled feed, then a killed instance', async (t) => {
  const fleet = await startFleet(t)
  const { a, b } = fleet.pair
  const d1 = await fleet.downstream([streamOf(a.url), streamOf(b.url)])
  const d2 = await fleet.downstream([streamOf(b.url), streamOf(a.url)])

  await t.test('every revoking request, on either instance: both downstream apps refuse the token', async (t) => {
  // Each returns the token that must die and the answer time of the request that killed it.
    const kinds: Record<string, (base: string) => Promise<{ token: string, answeredAt: number }>> = {
      async logout (base) {
        const { username } = await register(base)
        const s = await session(base, username)
        const res = await call(base, 'POST', '/auth/logout', { token: s.access, body: { scope: 'session' } })
        const answeredAt = Date.now()
        t.equal(res.status, 204)
        return { token: s.access, answeredAt }
      },
      async 'logout-all' (base) {
        const { username } = await register(base)
        const s1 = await session(base, username)
        const s2 = await session(base, username)
        const res = await call(base, 'POST', '/auth/logout', { token: s1.access, body: { scope: 'all' } })
        const answeredAt = Date.now()
        t.equal(res.status, 204)
        return { token: s2.access, answeredAt }
      },
      async 'session delete' (base) {
        const { username } = await register(base)
        const s1 = await session(base, username)
        const s2 = await session(base, username)
        const list = await call(base, 'GET', '/users/me/sessions', { token: s1.access })
        const other = (list.body as Array<{ id: string, current: boolean }>).find((s) => !s.current)!
        const res = await call(base, 'DELETE', `/users/me/sessions/${other.id}`, { token: s1.access })
        const answeredAt = Date.now()
        t.equal(res.status, 204)
        return { token: s2.access, answeredAt }
      },
      async 'password change' (base) {
        const { username, password } = await register(base)
        const s1 = await session(base, username)
        const s2 = await session(base, username)
        const res = await call(base, 'PATCH', '/users/me', { token: s1.access, body: { password: NEW_PASSWORD, current_password: password } })
        const answeredAt = Date.now()
        t.equal(res.status, 200)
        return { token: s2.access, answeredAt }
      },
      async 'account deletion' (base) {
        const { username } = await register(base)
        const s = await session(base, username)
        const res = await call(base, 'DELETE', '/users/me', { token: s.access })
        const answeredAt = Date.now()
        t.equal(res.status, 204)
        return { token: s.access, answeredAt }
      },
      async 'refresh reuse' (base) {
        const { username } = await register(base)
        const s = await session(base, username)
        const rotated = await call(base, 'POST', '/auth/refresh', { body: { refresh_token: s.refresh } })
        t.equal(rotated.status, 200)
        const reuse = await call(base, 'POST', '/auth/refresh', { body: { refresh_token: s.refresh } })
        const answeredAt = Date.now()
        t.equal(reuse.status, 401, 'reuse detected')
        return { token: rotated.body.access_token, answeredAt }
      },
      async 'compat renewal' (base) {
        const username = uniqueName('compat')
        const password = 'compat passphrase 1'
        t.equal((await call(base, 'POST', '/user', { body: { username, password } })).status, 201)
        const auth = await call(base, 'POST', '/authenticate_user', { body: { username, password } })
        const old = auth.body.token as string
        const renewed = await call(base, 'POST', '/validate_token', { body: { token: old } })
        const answeredAt = Date.now()
        t.equal(renewed.status, 200)
        t.not(renewed.body.token, old)
        return { token: old, answeredAt }
      }
    }

    const delays: number[] = []
    for (const [name, revoke] of Object.entries(kinds)) {
      for (const [where, base] of [['A', a.url], ['B', b.url]] as const) {
        const { token, answeredAt } = await revoke(base)
        const [r1, r2] = await Promise.all([refusedAfter(d1, token, answeredAt), refusedAfter(d2, token, answeredAt)])
        delays.push(r1, r2)
        t.pass(`${name} on ${where}: refused downstream after ${r1} / ${r2} ms`)
      }
    }
    // Control: a live token passes both, so the refusals above are the revocations'.
    const { username } = await register(a.url)
    const live = await session(b.url, username)
    t.equal((await d1.get('/me', live.access)).status, 200)
    t.equal((await d2.get('/me', live.access)).status, 200)
    t.comment(`revocation to downstream refusal, ${Object.keys(kinds).length} kinds x 2 instances x 2 apps: ${JSON.stringify(distribution(delays))} ms`)
  })

  await t.test('a stalled feed: closed routes answer 503 and recover by themselves, open routes serve and count', async (t) => {
    const proxy = await startRedisProxy({ port: a.port })
    t.teardown(() => proxy.close())
    const d = await fleet.downstream([`http://127.0.0.1:${proxy.port}/revocations/stream`], { STALE_AFTER_MS: '1500' })
    const { username } = await register(a.url)
    const s = await session(a.url, username)
    t.equal((await d.get('/me', s.access)).status, 200)

    proxy.stall()
    const stalledAt = Date.now()
    let closed
    for (;;) {
      closed = await d.get('/me', s.access)
      if (closed.status === 503) break
      if (closed.status !== 200) t.fail(`before going stale: ${closed.status}`)
    }
    const toRefusal = Date.now() - stalledAt
    t.equal(closed.headers.get('retry-after'), '2')
    t.same(Object.keys(closed.body).sort(), ['error', 'message', 'statusCode'])
    t.equal((await d.get('/catalog', s.access)).status, 200, "'open' route serves while stale")
    t.match((await d.get('/metrics')).body, /verifier_requests_total\{outcome="stale_open"\} [1-9]/)

    proxy.resume()
    for (;;) {
      const res = await d.get('/me', s.access)
      if (res.status === 200) break
      if (res.status !== 503) t.fail(`while stale: ${res.status}`)
      await sleep(20)
    }
    t.pass('recovered by itself')
    t.comment(`stall to first 503 on a 'closed' route: ${toRefusal} ms (staleAfter 1500 ms; wanted within staleAfter + 1000)`)
  })

  await t.test('the instance a downstream app streams from is killed: it resumes on the other, no revocation lost', async (t) => {
    const { username } = await register(b.url)
    const sessions = []
    for (let i = 0; i < 6; i++) sessions.push(await session(b.url, username))
    for (const s of sessions) t.equal((await d1.get('/me', s.access)).status, 200)

    await a.stop('SIGKILL')
    // Revoked while D1 has no stream: the first at once, the rest while it reconnects.
    for (const s of sessions.slice(0, 5)) {
      t.equal((await call(b.url, 'POST', '/auth/logout', { token: s.access, body: { scope: 'session' } })).status, 204)
    }
    const feed = await call(b.url, 'GET', '/revocations?since=0', { token: fleet.feedToken })
    const position = feed.body.position as number
    for (;;) {
      const status = (await d1.get('/verifier/status')).body
      if (status.connected && status.position >= position) break
      await sleep(20)
    }
    for (const s of sessions.slice(0, 5)) t.equal((await d1.get('/me', s.access)).status, 401, 'revoked while away: refused')
    t.equal((await d1.get('/me', sessions[5].access)).status, 200, 'the untouched session still passes')
    t.match(d1.output(), /revocation feed lost; reconnecting/)
    t.notMatch(d1.output(), fleet.feedToken, 'the feed token is never logged')
  })
})
