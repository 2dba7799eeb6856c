import t from 'tap'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { drizzle } from 'drizzle-orm/node-postgres'
import { build, createPostgresDatabase, uniqueName, waitFor, type App } from '../helper'
import { UsernameTakenError } from '../../src/errors'
import { appendToLog } from '../../src/db/postgres/revocation-log'

// The repositories' promises, on both dialects. On SQLite one writer runs at a time; on
// PostgreSQL (READ COMMITTED) the same promises rest on row locks, conditional writes and
// an advisory lock, and the interleavings that would break them are forced below with a
// second connection that holds a lock while the repository call waits behind it.

const HASH = '$2b$10$abcdefghijklmnopqrstuuJ0rPq0Wg7l8m1S0n2B3p4q5r6s7t8u9v' // any string: never checked here
const hour = 3600_000

async function newSession (app: App, userId: string, credentialVersion = 0) {
  const now = Date.now()
  const id = randomUUID()
  const refresh = randomUUID()
  const created = await app.sessionsRepository.create({ id, userId, credentialVersion, now, expiresAt: now + hour, accessExpiresAt: now + 60_000 }, refresh)
  return { id, refresh, created }
}

/** Revokes one access token as the service does, by consuming it in a renewal (its log row): false when consumed already. */
async function consume (app: App, sessionId: string, jti: string, now: number) {
  return await app.sessionsRepository.renew({ jti, sessionId, tokenExpiresAt: now + hour, accessExpiresAt: now + 60_000, now }) !== null
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  t.test(dialect, async (t) => {
    const url = dialect === 'postgres' ? await createPostgresDatabase(t) : ':memory:'
    const app = await build(t, { DATABASE_URL: url })
    const { usersRepository: users, sessionsRepository: sessions, revocationsRepository: revocations } = app

    t.test('parallel registrations of one name (any case): one is created, every other is UsernameTakenError', async (t) => {
      const name = uniqueName('race')
      const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => users.create(i % 2 === 0 ? name : name.toUpperCase(), HASH)))
      t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one created')
      for (const r of results) if (r.status === 'rejected') t.ok(r.reason instanceof UsernameTakenError, 'the others: taken (409), never another error')
      const other = await users.create(uniqueName('other'), HASH)
      await t.rejects(users.rename(other.id, name.toUpperCase()), UsernameTakenError, 'rename onto it: taken')
    })

    t.test('times are JS numbers (epoch ms) on both dialects', async (t) => {
      const u = await users.create(uniqueName(), HASH)
      const found = await users.findById(u.id)
      t.equal(typeof found!.createdAt, 'number')
      t.equal(found!.createdAt, u.createdAt)
      const s = await newSession(app, u.id)
      const [listed] = await sessions.listActive(u.id, Date.now())
      t.equal(listed.id, s.id)
      t.equal(typeof listed.expiresAt, 'number')
      t.equal(listed.revokedAt, null)
    })

    t.test('a session is created only while the password checked is current', async (t) => {
      const u = await users.create(uniqueName(), HASH)
      const asking = await newSession(app, u.id)
      t.equal(asking.created, true)
      const changed = await users.changePassword({ id: u.id, passwordHash: HASH, expectedVersion: 0, sessionId: asking.id, now: Date.now() })
      t.equal(typeof changed === 'object' && changed.user.credentialVersion, 1)
      t.equal((await newSession(app, u.id, 0)).created, false, 'the old version: no session')
      t.equal(await users.changePassword({ id: u.id, passwordHash: HASH, expectedVersion: 0, sessionId: asking.id, now: Date.now() }), 'stale')
      t.equal((await newSession(app, u.id, 1)).created, true, 'the new version: a session')
      t.ok(await users.delete(u.id, Date.now()))
      t.equal((await newSession(app, u.id, 1)).created, false, 'a deleted user: no session')
    })

    t.test('parallel rotations of one refresh token: one rotated, the others see its reuse', async (t) => {
      const u = await users.create(uniqueName(), HASH)
      const s = await newSession(app, u.id)
      const now = Date.now()
      const results = await Promise.all(Array.from({ length: 10 }, () => sessions.rotate(s.refresh, randomUUID(), now, now + 60_000)))
      t.equal(results.filter((r) => r.status === 'rotated').length, 1, 'one rotated')
      t.equal(results.filter((r) => r.status === 'reused').length, 9, 'the rest: reuse')
      t.same(await sessions.rotate(randomUUID(), randomUUID(), now, now), { status: 'invalid' })
    })

    t.test('parallel renewals of one access token: at most one; none once the session is revoked', async (t) => {
      const u = await users.create(uniqueName(), HASH)
      const s = await newSession(app, u.id)
      const now = Date.now()
      const jti = randomUUID()
      const results = await Promise.all(Array.from({ length: 10 }, () =>
        sessions.renew({ jti, sessionId: s.id, tokenExpiresAt: now + 60_000, accessExpiresAt: now + 120_000, now })))
      t.equal(results.filter((r) => r !== null).length, 1, 'one renewal')
      t.same(await sessions.revoke(s.id, 'logout', now), { entries: [{ kind: 'sid', id: s.id, until: now + 120_000 }], count: 1 }, 'the session revoked until its latest access token expires')
      t.same(await sessions.revoke(s.id, 'logout', now), { entries: [{ kind: 'sid', id: s.id, until: now + 120_000 }], count: 0 }, 'revoking again answers it again (to publish again), revoking nothing')
      t.equal(await sessions.renew({ jti: randomUUID(), sessionId: s.id, tokenExpiresAt: now + 60_000, accessExpiresAt: now + 120_000, now }), null)
    })

    t.test('the revocation log: parallel appends, read while they commit, are each read once and none skipped', async (t) => {
      const start = await revocations.loadAll(Date.now())
      const now = Date.now()
      const jtis = Array.from({ length: 40 }, () => randomUUID())
      // a session each: the appends contend on the log alone, not on a session's row
      const owner = await users.create(uniqueName(), HASH)
      const sessionOf = new Map<string, string>()
      for (const jti of jtis) sessionOf.set(jti, (await newSession(app, owner.id)).id)
      const seen: string[] = []
      let position = start.position
      let done = false
      const reader = (async () => {
        for (;;) {
          const finished = done
          const next = await revocations.since(position, now)
          t.ok(next.position >= position, 'the position never goes back')
          position = next.position
          seen.push(...next.entries.map((e) => e.id))
          if (finished) return
        }
      })()
      const results = await Promise.all(jtis.map((jti) => consume(app, sessionOf.get(jti)!, jti, now)))
      done = true
      await reader
      t.same(results, jtis.map(() => true))
      t.same([...seen].sort(), [...jtis].sort(), 'every row read, once')
      t.equal(await consume(app, sessionOf.get(jtis[0])!, jtis[0], now), false, 'a token is revoked once')
      const all = await revocations.loadAll(now)
      t.equal(all.position, position, 'loadAll covers exactly the rows read')
      t.ok(jtis.every((jti) => all.entries.some((e) => e.id === jti)))
    })

    t.test('password change and logout-all revoke the other sessions, and answer them', async (t) => {
      const u = await users.create(uniqueName(), HASH)
      const keep = await newSession(app, u.id)
      const other = await newSession(app, u.id)
      const now = Date.now()
      const changed = await users.changePassword({ id: u.id, passwordHash: HASH, username: uniqueName('renamed'), expectedVersion: 0, sessionId: keep.id, now })
      t.ok(typeof changed === 'object')
      if (typeof changed !== 'object') return
      t.same(changed.revoked.entries.map((e) => e.id), [other.id])
      t.equal(changed.revoked.count, 1)
      t.same((await sessions.listActive(u.id, now)).map((s) => s.id), [keep.id])
      const all = await sessions.revokeAllOfUser(u.id, 'logout_all', now)
      t.same(all.entries.map((e) => e.id).sort(), [keep.id, other.id].sort(), 'already revoked ones are answered again')
      t.equal(all.count, 1, 'but only the one revoked now is counted')
      t.equal(await users.changePassword({ id: u.id, passwordHash: HASH, expectedVersion: 1, sessionId: keep.id, now }), 'session_revoked')
    })

    if (dialect !== 'postgres') return

    // --- PostgreSQL: interleavings forced with a second connection ---------------------
    const other = new pg.Client({ connectionString: url })
    await other.connect()
    t.teardown(() => other.end())
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    t.teardown(() => admin.end())
    /** how many statements of this database wait for a lock */
    const waiting = async () => (await admin.query(
      'SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()'
    )).rows[0].n as number
    const track = <T>(p: Promise<T>) => {
      const state = { settled: false, promise: p }
      p.then(() => { state.settled = true }, () => { state.settled = true })
      return state
    }

    t.test('postgres: a log row is never skipped: an append that commits later holds back the ones after it', async (t) => {
      const now = Date.now()
      const { position } = await revocations.loadAll(now)
      // `other` appends (seq N) and stays uncommitted; then the service appends (seq N+1).
      await other.query('BEGIN')
      await appendToLog(drizzle({ client: other }), [{ kind: 'jti', id: 'held-back', until: now + hour }], now)
      const u = await users.create(uniqueName(), HASH)
      const s = await newSession(app, u.id)
      const later = track(consume(app, s.id, 'after-it', now))
      await waitFor(async () => later.settled || (await waiting()) >= 1)
      const first = await revocations.since(position, now)
      t.same(first.entries, [], 'nothing after N is visible while N is uncommitted')
      await other.query('COMMIT')
      t.equal(await later.promise, true)
      const second = await revocations.since(first.position, now)
      const read = [...first.entries, ...second.entries].map((e) => e.id)
      t.same(read, ['held-back', 'after-it'], 'both read, in order')
    })

    for (const racer of ['password change', 'deletion'] as const) {
      t.test(`postgres: a login that raced a ${racer} leaves no live session`, async (t) => {
        const u = await users.create(uniqueName(), HASH)
        const asking = await newSession(app, u.id)
        // Hold the login inside its transaction: after its check and its session insert,
        // before its refresh token insert (the table is locked against writes).
        await other.query('BEGIN')
        await other.query('LOCK TABLE refresh_tokens IN EXCLUSIVE MODE')
        const login = track(newSession(app, u.id, 0))
        await waitFor(async () => login.settled || (await waiting()) >= 1)
        const now = Date.now()
        const change = track<unknown>(racer === 'deletion'
          ? users.delete(u.id, now)
          : users.changePassword({ id: u.id, passwordHash: HASH, expectedVersion: 0, sessionId: asking.id, now }))
        // The change must wait for the login (the user's row is locked); if it did not, it has finished.
        await waitFor(async () => change.settled || (await waiting()) >= 2)
        t.equal(change.settled, false, `the ${racer} waits for the login in flight`)
        await other.query('COMMIT')
        const { id, created } = await login.promise
        await change.promise
        t.equal(created, true, 'the login went first')
        t.equal(await sessions.findActive(id, Date.now()), undefined, `and its session was revoked by the ${racer}`)
      })
    }
  })
}
