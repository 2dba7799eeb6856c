import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { asc, sql } from 'drizzle-orm'
import { bearer, build, login, logLines, newUser, PASSWORD, register, runSql, startServer, testDatabase, uniqueName, waitFor, type App } from '../helper'
import { loggerOptions } from '../../src/logger'
import { auditEvents as sqliteAuditEvents } from '../../src/db/sqlite/schema'
import { auditEvents as postgresAuditEvents } from '../../src/db/postgres/schema'
import type { AuditRecord } from '../../src/db/repositories'
import { AUDIT_EVENT_NAMES } from '../../plugins/app/audit'

// Security events (docs/audit.md): driven over HTTP, asserted in audit_events and in the
// log lines. Rerun on PostgreSQL by audit.postgres.test.ts.

const TABLE = { AUDIT_LOG: 'table' }

/** An app whose log lines (JSON) are kept for the test to read. */
async function logged (t: Test, env: Record<string, string>) {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  const app = await build(t, { LOG_LEVEL: 'info', ...env }, { logger: { ...(loggerOptions('info') as object), stream } })
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  return { app, text: () => lines.join(''), events: () => parsed().filter((l) => AUDIT_EVENT_NAMES.includes(l.event as never)) }
}

/** Every row of audit_events, oldest first (a test database of its own: nobody else's rows). */
async function allRows (app: App): Promise<AuditRecord[]> {
  if (app.db.kind === 'postgres') return await app.db.orm.select().from(postgresAuditEvents).orderBy(asc(postgresAuditEvents.id))
  return app.db.orm.select().from(sqliteAuditEvents).orderBy(asc(sqliteAuditEvents.id)).all()
}

const sid = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid as string

type Page = { events: Array<Record<string, unknown>>, next?: string }

t.test('every security event, driven over HTTP: one row each with the stable fields, and a log line with the same; no secret anywhere', async (t) => {
  const { app, text, events } = await logged(t, { ...TABLE, DATABASE_URL: await testDatabase(t) })
  const ua = `AuditTest/1.0 ${'x'.repeat(400)}`
  const headers = { 'user-agent': ua }
  const post = async (url: string, payload: object, extra: Record<string, string> = {}) =>
    await app.inject({ method: 'POST', url, payload, headers: { ...headers, ...extra } })
  const as = (token: string) => ({ ...headers, ...bearer(token) })
  const loginAs = async (username: string, password = PASSWORD) => {
    const res = await post('/auth/login', { username, password })
    t.equal(res.statusCode, 200)
    return res.json() as { access_token: string, refresh_token: string }
  }

  const username = uniqueName('audited')
  const typedByMistake = uniqueName('looks-like-a-password')
  const wrongPassword = 'a wrong password typed'
  const newPassword = 'the next passphrase'
  const reg = await post('/auth/register', { username, password: PASSWORD })
  t.equal(reg.statusCode, 201)
  const userId = reg.json().id as string
  const s1 = await loginAs(username) // login.success
  t.equal((await post('/auth/login', { username, password: wrongPassword })).statusCode, 401) // login.failure (known)
  t.equal((await post('/auth/login', { username: typedByMistake, password: wrongPassword })).statusCode, 401) // login.failure (unknown)
  const rotated = await post('/auth/refresh', { refresh_token: s1.refresh_token })
  t.equal(rotated.statusCode, 200)
  t.equal((await post('/auth/refresh', { refresh_token: s1.refresh_token })).statusCode, 401) // refresh.reuse
  const s2 = await loginAs(username)
  const s3 = await loginAs(username)
  const newName = uniqueName('renamed')
  t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers: as(s2.access_token), payload: { username: newName } })).statusCode, 200) // user.renamed
  t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers: as(s2.access_token), payload: { password: newPassword, current_password: wrongPassword } })).statusCode, 403) // user.update_denied
  t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers: as(s2.access_token), payload: { password: newPassword, current_password: PASSWORD } })).statusCode, 200) // user.password_changed
  const s4 = await loginAs(newName, newPassword)
  const s5 = await loginAs(newName, newPassword)
  t.equal((await app.inject({ method: 'DELETE', url: `/users/me/sessions/${sid(s5.access_token)}`, headers: as(s4.access_token) })).statusCode, 204) // session.revoked
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: as(s4.access_token) })).statusCode, 204) // logout
  const s6 = await loginAs(newName, newPassword)
  await loginAs(newName, newPassword)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: as(s6.access_token), payload: { scope: 'all' } })).statusCode, 204) // logout.all
  const s8 = await loginAs(newName, newPassword)
  t.equal((await app.inject({ method: 'DELETE', url: '/logout', headers: as(s8.access_token) })).statusCode, 200) // logout (compat 001)
  const s9 = await loginAs(newName, newPassword)
  t.equal((await post('/logout', { token: s9.access_token })).statusCode, 200) // logout (compat 000)
  const s10 = await loginAs(newName, newPassword)
  t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: as(s10.access_token) })).statusCode, 204) // user.deleted

  const s = (tokens: { access_token: string }) => sid(tokens.access_token)
  const expected: Array<[string, string, string | null, Record<string, unknown>?]> = [
    ['user.registered', 'success', null],
    ['login.success', 'success', s(s1)],
    ['login.failure', 'failure', null, { reason: 'bad_credentials' }],
    ['login.failure', 'failure', null, { reason: 'bad_credentials', userId: null }],
    ['refresh.reuse', 'denied', s(s1), { sessionsRevoked: 1 }],
    ['login.success', 'success', s(s2)],
    ['login.success', 'success', s(s3)],
    ['user.renamed', 'success', s(s2)],
    ['user.update_denied', 'denied', s(s2), { reason: 'wrong_current_password' }],
    ['user.password_changed', 'success', s(s2), { sessionsRevoked: 1 }], // s3 (s1 was revoked by the reuse)
    ['login.success', 'success', s(s4)],
    ['login.success', 'success', s(s5)],
    ['session.revoked', 'success', s(s5)],
    ['logout', 'success', s(s4)],
    ['login.success', 'success', s(s6)],
    ['login.success', 'success', null],
    ['logout.all', 'success', s(s6), { sessionsRevoked: 3 }], // s2, s6 and the one after it
    ['login.success', 'success', s(s8)],
    ['logout', 'success', s(s8)],
    ['login.success', 'success', s(s9)],
    ['logout', 'success', s(s9)],
    ['login.success', 'success', s(s10)],
    ['user.deleted', 'success', s(s10), { sessionsRevoked: 1 }]
  ]

  const rows = await allRows(app)
  const lines = events()
  t.same(rows.map((r) => r.event), expected.map(([e]) => e), 'one row per event, in order')
  t.same(lines.map((l) => l.event), expected.map(([e]) => e), 'one log line per event, in order')
  for (const [i, [event, outcome, sessionId, extra = {}]] of expected.entries()) {
    const row = rows[i]
    const line = lines[i]
    const userIdWanted = 'userId' in extra ? extra.userId : userId
    t.match(row, { event, outcome, userId: userIdWanted, ip: '127.0.0.1', userAgent: ua.slice(0, 256), reason: extra.reason ?? null, sessionsRevoked: extra.sessionsRevoked ?? null }, `row ${i}: ${event}`)
    if (sessionId !== null) t.equal(row.sessionId, sessionId, `row ${i}: ${event} names its session`)
    t.type(row.requestId, 'string')
    t.ok(Math.abs(row.createdAt - Date.now()) < 60_000, `row ${i}: a creation time`)
    // The log line: the same stable fields, with the request id the row names.
    t.match(line, { event, outcome, userId: userIdWanted, sessionId: row.sessionId, ip: '127.0.0.1', userAgent: ua.slice(0, 256), reqId: row.requestId }, `line ${i}: ${event}`)
    for (const key of ['event', 'outcome', 'userId', 'sessionId', 'ip', 'userAgent', 'reqId']) t.ok(key in line, `line ${i}: ${key} present`)
    if (extra.reason !== undefined) t.equal(line.reason, extra.reason)
    if (extra.sessionsRevoked !== undefined) t.equal(line.sessionsRevoked, extra.sessionsRevoked)
  }
  t.equal(rows[0].sessionId, null, 'a registration has no session')
  t.equal(new Set(rows.map((r) => r.requestId)).size, rows.length, 'one request id per event')
  t.equal(lines.find((l) => l.event === 'refresh.reuse')?.level, 40, 'a reuse is a warning')

  const everything = text() + JSON.stringify(rows)
  for (const secret of [PASSWORD, wrongPassword, newPassword, typedByMistake, s1.access_token, s1.refresh_token, rotated.json().refresh_token, s2.access_token, s9.access_token]) {
    t.notOk(everything.includes(secret), `never recorded: ${secret.slice(0, 12)}...`)
  }
  t.notMatch(everything, /\$2[aby]\$/, 'no bcrypt hash')

  // The deleted account's events are kept (until pruned), but nobody can read them.
  t.equal((await app.auditRepository.listForUser(userId, 100)).length, expected.length - 1, 'kept: all but the unknown-user failure')
  t.equal((await app.inject({ url: '/users/me/events', headers: bearer(s10.access_token) })).statusCode, 401, 'its tokens are refused')
})

t.test('GET /users/me/events: newest first, paginated by an opaque cursor, pages neither overlap nor skip', async (t) => {
  const app = await build(t, TABLE)
  const u = await newUser(app)
  const other = await login(app, u.username) // login.success in a second session
  const actions: string[] = ['user.registered', 'login.success', 'login.success']
  // Renames are cheap (no hashing): many land in the same millisecond, so ties are paged by id.
  for (let i = 0; i < 12; i++) {
    t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { username: uniqueName('r') } })).statusCode, 200)
    actions.push('user.renamed')
  }
  t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { password: 'the next passphrase', current_password: 'not the password' } })).statusCode, 403)
  actions.push('user.update_denied')
  for (let i = 0; i < 12; i++) {
    t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { username: uniqueName('r') } })).statusCode, 200)
    actions.push('user.renamed')
  }
  t.equal((await app.inject({ method: 'DELETE', url: `/users/me/sessions/${sid(other.access_token)}`, headers: u.auth })).statusCode, 204)
  actions.push('session.revoked')

  const page = async (query: string) => {
    const res = await app.inject({ url: `/users/me/events${query}`, headers: u.auth })
    t.equal(res.statusCode, 200, `GET /users/me/events${query.slice(0, 30)}`)
    return res.json() as Page
  }
  const all = await page('?limit=100')
  t.equal(all.next, undefined, 'everything fits: no next')
  t.same(all.events.map((e) => e.event), [...actions].reverse(), 'newest first')
  const times = all.events.map((e) => Date.parse(e.created_at as string))
  t.same(times, [...times].sort((a, b) => b - a), 'created_at never increases down the list')
  t.equal(all.events[0].session_id, sid(other.access_token), 'the revoked session is named')
  t.equal(all.events[0].ip, '127.0.0.1')
  t.equal(all.events[0].user_agent, 'lightMyRequest', 'inject\'s own User-Agent')
  t.notOk('user_id' in all.events[0], 'the user id is not repeated')

  const byDefault = await page('')
  t.equal(byDefault.events.length, 20, 'default limit: 20')
  t.same(byDefault.events, all.events.slice(0, 20))
  t.type(byDefault.next, 'string')

  const pages: Page[] = []
  let cursor: string | undefined
  do {
    const p = await page(`?limit=7${cursor === undefined ? '' : `&before=${cursor}`}`)
    pages.push(p)
    cursor = p.next
  } while (cursor !== undefined && pages.length < 10)
  t.same(pages.map((p) => p.events.length), [7, 7, 7, 7, 1], '29 events in pages of 7')
  t.same(pages.flatMap((p) => p.events), all.events, 'the pages, end to end, are the whole list: no overlap, no gap')
  const exact = await page(`?limit=${all.events.length}`)
  t.equal(exact.next, undefined, 'a page that ends exactly at the last event has no next')
  t.same((await page('?limit=1')).events, all.events.slice(0, 1))

  for (const [query, why] of [
    ['?limit=0', 'limit 0'], ['?limit=101', 'limit over 100'], ['?limit=abc', 'limit not a number'], ['?limit=-1', 'negative limit'],
    ['?before=not-a-cursor', 'a cursor we never made'], ['?before=', 'an empty cursor'], ['?before=a%2Fb', 'a cursor outside base64url'],
    ['?page=2', 'an unknown parameter']
  ]) {
    const res = await app.inject({ url: `/users/me/events${query}`, headers: u.auth })
    t.equal(res.statusCode, 400, why)
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', message: String }, `${why}: the error shape`)
  }
  t.equal((await app.inject({ url: '/users/me/events' })).statusCode, 401, 'no token: 401')
})

t.test('another user\'s events are never visible, whatever the cursor', async (t) => {
  const app = await build(t, TABLE)
  const a = await newUser(app)
  const b = await newUser(app)
  // Failed logins against a, from b's side of things: they are a's events.
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: a.username, password: 'not the password' } })).statusCode, 401)
  await app.inject({ method: 'PATCH', url: '/users/me', headers: b.auth, payload: { username: uniqueName('b') } })
  const list = async (who: { auth: Record<string, string> }, query = '') => (await app.inject({ url: `/users/me/events${query}`, headers: who.auth })).json() as Page
  const ofA = await list(a, '?limit=100')
  const ofB = await list(b, '?limit=100')
  t.same(ofA.events.map((e) => e.event), ['login.failure', 'login.success', 'user.registered'])
  t.same(ofB.events.map((e) => e.event), ['user.renamed', 'login.success', 'user.registered'])
  const ids = (p: Page) => p.events.map((e) => e.request_id)
  t.notOk(ids(ofA).some((id) => ids(ofB).includes(id)), 'no event in both lists')
  // a's cursor, replayed by b, pages through b's events only.
  const aFirst = await list(a, '?limit=1')
  t.type(aFirst.next, 'string')
  const bWithACursor = await list(b, `?limit=100&before=${aFirst.next}`)
  t.ok(bWithACursor.events.every((e) => ids(ofB).includes(e.request_id)), 'only b\'s own events')
})

t.test('AUDIT_LOG=log (the default): the events are logged, no row is written, and the endpoint answers 404 saying why', async (t) => {
  const { app, events } = await logged(t, { DATABASE_URL: await testDatabase(t) })
  t.equal(app.config.audit.table, false)
  const u = await newUser(app)
  const res = await app.inject({ url: '/users/me/events', headers: u.auth })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { statusCode: 404, error: 'Not Found', message: /audit table is off \(AUDIT_LOG=log\)/ })
  t.equal((await app.inject({ url: '/users/me/events' })).statusCode, 401, 'still a protected route')
  t.same(events().map((l) => l.event), ['user.registered', 'login.success'])
  t.same(await allRows(app), [], 'no row')
})

t.test('pruning deletes the events older than AUDIT_RETENTION_DAYS, and only those', async (t) => {
  const app = await build(t, { ...TABLE, AUDIT_RETENTION_DAYS: '2' })
  const day = 86_400_000
  const old = await newUser(app)
  const recent = await newUser(app)
  // Age the rows: old's past the retention, recent's a minute short of it.
  await runSql(app, sql`UPDATE audit_events SET created_at = created_at - ${2 * day + 60_000} WHERE user_id = ${old.id}`)
  await runSql(app, sql`UPDATE audit_events SET created_at = created_at - ${2 * day - 60_000} WHERE user_id = ${recent.id}`)
  const before = await app.auditRepository.listForUser(recent.id, 100)
  t.equal((await app.pruneExpired()).auditEvents, 2, 'old\'s registration and login')
  t.same(await app.auditRepository.listForUser(old.id, 100), [], 'old\'s events are gone')
  t.same(await app.auditRepository.listForUser(recent.id, 100), before, 'recent\'s events stay')
  const page = (await app.inject({ url: '/users/me/events', headers: recent.auth })).json() as Page
  t.same(page.events.map((e) => e.event), ['login.success', 'user.registered'])
  t.equal((await app.pruneExpired(Date.now() + 2 * 60_000)).auditEvents, 2, 'two minutes later, recent\'s go too')
})

t.test('a failed audit write (the table dropped) fails nothing: the login succeeds, the failure is logged and counted', async (t) => {
  const { app, text, events } = await logged(t, { ...TABLE, DATABASE_URL: await testDatabase(t) })
  const u = await register(app)
  await runSql(app, sql`DROP TABLE audit_events`)
  const ok = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: PASSWORD } })
  t.equal(ok.statusCode, 200, 'the login succeeds')
  t.type(ok.json().access_token, 'string')
  const bad = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: u.username, password: 'not the password' } })
  t.equal(bad.statusCode, 401, 'a failed login is still a plain 401')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(ok.json().access_token) })
  t.equal(logout.statusCode, 204, 'a logout too')
  const counter = await app.metrics.registry.getSingleMetric('auth_audit_write_failures_total')?.get()
  t.equal(counter?.values[0]?.value, 3, 'three writes failed, three counted')
  const failures = text().split('\n').filter((l) => l.includes('security event not written'))
  t.equal(failures.length, 3, 'each logged')
  t.match(JSON.parse(failures[0]), { level: 50, event: 'audit.write_failed', failedEvent: 'login.success', err: { message: /audit_events/ } })
  t.same(events().map((l) => l.event), ['user.registered', 'login.success', 'login.failure', 'logout'], 'the log lines are all there')
  t.notOk(text().includes('not the password'))
})

t.test('a real server behind one proxy (TRUST_PROXY=1): the client IP is the one the proxy saw, in the row and in the printed line', async (t) => {
  const server = await startServer(t, { ...TABLE, TRUST_PROXY: '1', DATABASE_URL: await testDatabase(t) })
  const headers = { 'content-type': 'application/json', 'user-agent': 'e2e-agent/2', 'x-forwarded-for': '203.0.113.7' }
  const username = uniqueName('proxied')
  const reg = await fetch(`${server.url}/auth/register`, { method: 'POST', headers, body: JSON.stringify({ username, password: PASSWORD }) })
  t.equal(reg.status, 201)
  const res = await fetch(`${server.url}/auth/login`, { method: 'POST', headers, body: JSON.stringify({ username, password: PASSWORD }) })
  t.equal(res.status, 200)
  const { access_token: token } = await res.json() as { access_token: string }
  const page = await (await fetch(`${server.url}/users/me/events`, { headers: bearer(token) })).json() as Page
  t.match(page.events, [{ event: 'login.success', ip: '203.0.113.7', user_agent: 'e2e-agent/2', session_id: sid(token) }, { event: 'user.registered', ip: '203.0.113.7' }])
  const printed = () => logLines(server).filter((l) => l.event === 'login.success')
  await waitFor(async () => printed().length === 1)
  t.match(printed()[0], { event: 'login.success', outcome: 'success', userId: (await reg.json() as { id: string }).id, sessionId: sid(token), ip: '203.0.113.7', userAgent: 'e2e-agent/2', reqId: page.events[0].request_id })
})
