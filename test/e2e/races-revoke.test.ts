import t from 'tap'
import Database from 'better-sqlite3'
import pg from 'pg'
import { DIALECT, REDIS_URL, requireRedis, testDatabase, waitFor } from '../helper'
import { startPair } from '../support/cluster'
import { burst, call, claims, me, refresh, register, session, sleep, type Answer, type Target } from '../support/http'

// A refresh racing a revocation of its own session, across two service processes (npm run
// build first) on one database and one Redis, each request over a connection of its own.
// Runs on SQLite here and on PostgreSQL in races-revoke.postgres.test.ts.
// docs/api.md, Tokens and sessions, "Concurrency": once a revocation is answered, no token of
// that session is accepted again. The refresh either commits first (and the revocation's
// `sid` entry lasts until the new token's exp) or gets 401.

// Sessions per revoking route. On the old code (PostgreSQL) 40 gave 34, 26, 28, 1 and 36 sessions
// whose `sid` entry did not cover a refreshed token: at those rates 8 rounds miss the race on a
// route with odds of (14/40)^8 < 1/4000 at worst (logout-all), the password change aside (1 in 40
// either way); RACE_ROUNDS=40 repeats the measurement.
const ROUNDS = Number(process.env.RACE_ROUNDS ?? 8)
const NEW_PASSWORD = 'an entirely new passphrase'

/** The latest `until` (epoch ms) of each session's `sid` entries in the database's revocation log. */
async function sidUntil (databaseUrl: string): Promise<Map<string, number>> {
  const query = "SELECT target_id AS id, max(until) AS until FROM revocation_log WHERE kind = 'sid' GROUP BY target_id"
  let rows: Array<{ id: string, until: number | string }>
  if (DIALECT === 'postgres') {
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    try {
      rows = (await client.query(query)).rows
    } finally {
      await client.end()
    }
  } else {
    const db = new Database(databaseUrl.replace(/^file:/, ''), { readonly: true })
    try {
      rows = db.prepare(query).all() as typeof rows
    } finally {
      db.close()
    }
  }
  return new Map(rows.map((r) => [r.id, Number(r.until)]))
}

/** A session to race: its tokens, and what the revocation needs (another session's token, the password). */
interface Victim { access: string, refresh: string, other: string, password: string }

interface Revoker {
  name: string
  /** the status of a revocation that was made */
  ok: number
  revoke: (target: Target, v: Victim) => Promise<Answer>
  /**
   * How long the refresh waits (once the connections are open) in round `i`: a revocation
   * that hashes first (PATCH: two bcrypts) commits late, so the refresh is fired at points
   * spread over that time. 0: both fired in the same tick.
   */
  lead: (i: number, revokeMs: number) => number
  /** the revocation reaches every session of the user: each round needs a user of its own */
  perRound: boolean
}

const together = () => 0
const revokers: Revoker[] = [
  {
    name: 'POST /auth/logout',
    ok: 204,
    revoke: (target, v) => call(target, 'POST', '/auth/logout', { token: v.access }),
    lead: together,
    perRound: false
  },
  {
    name: 'POST /auth/logout {"scope":"all"}',
    ok: 204,
    revoke: (target, v) => call(target, 'POST', '/auth/logout', { token: v.other, body: { scope: 'all' } }),
    lead: together,
    perRound: true
  },
  {
    name: 'DELETE /users/me/sessions/:id',
    ok: 204,
    revoke: (target, v) => call(target, 'DELETE', `/users/me/sessions/${claims(v.access).sid}`, { token: v.other }),
    lead: together,
    perRound: false
  },
  {
    name: 'PATCH /users/me (password change)',
    ok: 200,
    revoke: (target, v) => call(target, 'PATCH', '/users/me', { token: v.other, body: { current_password: v.password, password: NEW_PASSWORD } }),
    lead: (i, revokeMs) => Math.floor(revokeMs * (i % 10) / 9),
    perRound: true
  },
  {
    name: 'DELETE /users/me',
    ok: 204,
    revoke: (target, v) => call(target, 'DELETE', '/users/me', { token: v.other }),
    lead: together,
    perRound: true
  }
]

t.test('a refresh racing a revocation of its session never yields a token accepted after the revocation was answered', async (t) => {
  await requireRedis(t)
  const databaseUrl = await testDatabase(t)
  // No load shedding: the logins that set up the rounds must not get 503 on a busy machine.
  const { a, b } = await startPair(t, { redisUrl: REDIS_URL, databaseUrl, env: { HASHING_MAX_WAIT_MS: '600000' } })
  const instances = [a.url, b.url]

  for (const revoker of revokers) {
    t.test(`${revoker.name} on one instance, POST /auth/refresh on the other (${DIALECT})`, async (t) => {
      // A revocation of one session leaves the user's others alone: one user serves every
      // round. One of all the user's sessions touches every session: a user for each round.
      const shared = revoker.perRound ? undefined : await register(a.url)
      const sharedOther = shared === undefined ? undefined : await session(a.url, shared.username)
      const victims = await inParallel(ROUNDS, async (): Promise<Victim> => {
        const user = shared ?? await register(a.url)
        const own = await session(b.url, user.username)
        const other = sharedOther ?? await session(a.url, user.username)
        return { ...own, other: other.access, password: user.password }
      })
      // Tokens issued from the next second on expire later than the logins' (exp has whole
      // seconds): a refresh's token then outlives an entry that kept the login's expiry.
      const lastIat = Math.max(...victims.map((v) => iat(v.access)))
      await waitFor(async () => Math.floor(Date.now() / 1000) > lastIat, 5000)

      // How long one revocation takes here now (for the PATCH's spread), measured on a spare session.
      const spare = await register(a.url)
      const spareVictim = { ...await session(b.url, spare.username), other: (await session(a.url, spare.username)).access, password: spare.password }
      const started = Date.now()
      t.equal((await revoker.revoke(a.url, spareVictim)).status, revoker.ok, 'a revocation outside the race works')
      const revokeMs = Date.now() - started

      const issued = new Map<string, number[]>() // sid -> exp of every access token issued to it
      const both: Array<{ sid: string, pair: { access_token: string, refresh_token: string } }> = []
      const statuses: string[] = []
      for (const [i, v] of victims.entries()) {
        const sid = claims(v.access).sid
        issued.set(sid, [claims(v.access).exp])
        const revokeOn = instances[i % 2]
        const refreshOn = instances[(i + 1) % 2]
        const lead = revoker.lead(i, revokeMs)
        const [revoked, refreshed] = await burst(2, (k) => (k === 0 ? revokeOn : refreshOn), async (target, k) => {
          if (k === 0) return await revoker.revoke(target, v)
          if (lead > 0) await sleep(lead)
          return await call(target, 'POST', '/auth/refresh', { body: { refresh_token: v.refresh } })
        })
        statuses.push(`${revoked.status}/${refreshed.status}`)
        if (revoked.status !== revoker.ok) continue
        if (refreshed.status === 200) {
          issued.get(sid)!.push(claims(refreshed.body.access_token).exp)
          both.push({ sid, pair: refreshed.body })
        }
      }
      t.same(statuses.filter((s) => !s.startsWith(`${revoker.ok}/`)), [], `every revocation answered ${revoker.ok}`)
      t.same(statuses.filter((s) => !/\/(200|401)$/.test(s)), [], 'every refresh answered 200 or 401')

      // The entry of every revoked session lasts as long as the longest-lived token it issued.
      const untils = await sidUntil(databaseUrl)
      const uncovered: string[] = []
      for (const [sid, exps] of issued) {
        const until = untils.get(sid)
        const exp = Math.max(...exps) * 1000
        if (until === undefined || until < exp) uncovered.push(`${sid}: until ${until ?? 'none'} < exp ${exp}`)
      }
      t.same(uncovered, [], `every sid entry covers every token of its session (${uncovered.length} of ${issued.size} do not; ` +
        `${both.length} refreshes answered 200 alongside the revocation)`)

      // And over HTTP: a token from a refresh answered alongside the revocation is refused everywhere.
      const accepted: string[] = []
      for (const { sid, pair } of both) {
        for (const base of instances) {
          const status = await me(base, pair.access_token)
          if (status !== 401) accepted.push(`${sid}: GET /users/me ${status}`)
          const introspected = await call(base, 'POST', '/auth/introspect', { body: { token: pair.access_token } })
          if (introspected.status !== 200 || introspected.body.active !== false) accepted.push(`${sid}: introspect ${JSON.stringify(introspected.body)}`)
        }
        const again = await refresh(b.url, pair.refresh_token)
        if (again.status !== 401) accepted.push(`${sid}: refresh ${again.status}`)
      }
      t.same(accepted, [], 'no token of a revoked session is accepted on either instance')
    })
  }
})

/** `n` results of `fn`, at most 4 running at once (both instances' two bcrypt threads). */
async function inParallel<T> (n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < n) {
      const i = next++
      results[i] = await fn(i)
    }
  }))
  return results
}

/** A token's iat (epoch seconds). */
const iat = (token: string) => (claims(token) as unknown as { iat: number }).iat
