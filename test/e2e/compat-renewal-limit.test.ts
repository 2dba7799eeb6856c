import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { startServer } from '../helper'
import { authenticateUser, compatRegister } from '../support/http'

// Seed 000's tokens renew on use, and every renewal adds a blocklist entry that lives as
// long as the token (a log row, a Redis key, one entry per replica). docs/api.md, "Compat
// renewals": a session renews at most 10 times in any 60 s, on all instances together;
// beyond that 429 with Retry-After, nothing written. Two service processes, one database.

const LIMIT = 10
const WINDOW_MS = 60_000
const SESSIONS = 12

/** GET /user with the token: the status, the body and Retry-After. */
async function getUser (base: string, token: string) {
  const res = await fetch(`${base}/user`, { headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, body: await res.json() as Record<string, unknown>, retryAfter: res.headers.get('retry-after') }
}

t.test('one account, many sessions renewing as fast as they can: what each session adds stays bounded', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'auth-renew-')), 'auth.db')
  const env = { RATE_LIMITS: 'off', DATABASE_URL: `file:${file}` }
  const a = await startServer(t, env)
  const b = await startServer(t, env)
  const user = await compatRegister(a.url)
  const tokens: string[] = []
  for (let i = 0; i < SESSIONS; i++) tokens.push((await authenticateUser(a.url, user.username)).body.token as string)

  // Each session renews on alternate instances until refused, up to three times the limit.
  const outcomes = await Promise.all(tokens.map(async (first) => {
    let token = first
    for (let i = 0; i < 3 * LIMIT; i++) {
      const answer = await getUser(i % 2 === 0 ? a.url : b.url, token)
      if (answer.status === 200) { token = answer.body.token as string; continue }
      return { renewals: i, ...answer, token }
    }
    return { renewals: 3 * LIMIT, status: 200, body: {}, retryAfter: null, token }
  }))

  t.same(outcomes.map((o) => o.status), tokens.map(() => 429), 'every session is refused once over the limit')
  t.ok(outcomes.every((o) => o.renewals <= LIMIT), `at most ${LIMIT} renewals each (${outcomes.map((o) => o.renewals).join(', ')})`)
  const refused = outcomes[0]
  t.same(refused.body, { message: 'Too many attempts; try again later' }, "the seed's error shape")
  const wait = Number(refused.retryAfter)
  t.ok(Number.isInteger(wait) && wait >= 1 && wait <= WINDOW_MS / 1000, `Retry-After ${refused.retryAfter}`)
  const again = await getUser(b.url, refused.token)
  t.equal(again.status, 429, 'still refused on the other instance')
  const rename = await fetch(`${a.url}/user`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${refused.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ username: `${user.username}_x` })
  })
  t.equal(rename.status, 429, 'PUT /user over the limit: 429')
  const me = await fetch(`${b.url}/users/me`, { headers: { authorization: `Bearer ${refused.token}` } })
  t.equal(me.status, 200, 'the refused token still works')
  t.equal((await me.json() as { username: string }).username, user.username, 'and the refused PUT changed nothing')

  // The database counts: per session, no 60 s window holds more than LIMIT revoked tokens,
  // and the log holds exactly one live entry per renewal.
  const db = new Database(file, { readonly: true })
  t.teardown(() => db.close())
  const rows = db.prepare('SELECT session_id AS sid, revoked_at AS at FROM revoked_tokens ORDER BY revoked_at').all() as Array<{ sid: string, at: number }>
  const bySession = new Map<string, number[]>()
  for (const r of rows) bySession.set(r.sid, [...bySession.get(r.sid) ?? [], r.at])
  let worst = 0
  for (const times of bySession.values()) {
    for (let i = 0; i < times.length; i++) {
      const inWindow = times.filter((at) => at >= times[i] && at < times[i] + WINDOW_MS).length
      worst = Math.max(worst, inWindow)
    }
  }
  t.ok(worst <= LIMIT, `at most ${LIMIT} entries per session in any ${WINDOW_MS / 1000} s (most: ${worst})`)
  t.ok(rows.length <= SESSIONS * LIMIT, `${rows.length} revoked tokens for ${SESSIONS} sessions`)
  const logged = db.prepare("SELECT count(*) AS n FROM revocation_log WHERE kind = 'jti'").get() as { n: number }
  t.equal(logged.n, rows.length, 'one log entry per renewal, none for a refused one')
})
