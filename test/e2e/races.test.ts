import t from 'tap'
import { REDIS_URL, requireRedis, startServer } from '../helper'
import { startPair } from '../support/cluster'
import {
  authenticateUser, burst, call, compatLogout, compatRegister, login, me, putUser, refresh, register,
  session, sleep, validateToken, type Answer
} from '../support/http'

// Requests that race, against real service processes (npm run build first), each over a
// connection of its own. API.md, Tokens, "Concurrency": every rule holds when requests race.

const NEW_PASSWORD = 'an entirely new passphrase'

/** How long one login takes on `base` (one bcrypt at the server's cost): the race's time scale. */
async function loginTime (base: string) {
  const user = await register(base)
  const started = Date.now()
  await session(base, user.username)
  return Date.now() - started
}

/**
 * Fires `change` `lead` ms after the first of up to 12 logins with the password the user had
 * before; a new login starts every `step` ms until the change is answered, each over its own
 * connection. Returns the change's status, the token pairs of the logins answered 200, and
 * how many logins were in flight when the change was answered (started before, answered after).
 */
async function loginsDuring (base: string, username: string, change: () => Promise<number>, step: number, lead: number) {
  const logins: Array<Promise<Answer>> = []
  const state = { changing: true, raced: 0 }
  const firing = (async () => {
    while (state.changing && logins.length < 12) {
      logins.push(login(base, username).then((answer) => { if (!state.changing) state.raced++; return answer }))
      await sleep(step)
    }
  })()
  await sleep(lead)
  const changed = await change()
  state.changing = false
  await firing
  const answers = await Promise.all(logins)
  const ok = answers.filter((a) => a.status === 200).map((a) => a.body as { access_token: string, refresh_token: string })
  return { changed, ok, raced: state.raced }
}

/** Those of these logins whose session is still alive: their access or refresh token is accepted. */
async function alive (base: string, pairs: Array<{ access_token: string, refresh_token: string }>) {
  const living: string[] = []
  for (const pair of pairs) {
    const access = await me(base, pair.access_token)
    const renewed = (await refresh(base, pair.refresh_token)).status
    if (access === 200 || renewed === 200) living.push(`GET /users/me ${access}, refresh ${renewed}`)
  }
  return living
}

t.test('F1: a login in flight never yields a session that outlives the password change or deletion it raced', async (t) => {
  const server = await startServer(t, { BCRYPT_COST: '12', RATE_LIMITS: 'off' }) // a wide window
  const d = await loginTime(server.url)

  for (const [name, status] of [['password change (PATCH /users/me)', 200], ['account deletion (DELETE /users/me)', 204]] as const) {
    t.test(name, async (t) => {
      let answered = 0
      let raced = 0
      const survivors: string[] = []
      for (let round = 0; round < 3; round++) {
        const user = await register(server.url)
        const own = await session(server.url, user.username)
        const change = status === 200
          // two hashes (the current password, the new one): logins start from the first
          ? async () => (await call(server.url, 'PATCH', '/users/me', { token: own.access, body: { current_password: user.password, password: NEW_PASSWORD } })).status
          // no hash at all: fire it while the first logins are being hashed
          : async () => (await call(server.url, 'DELETE', '/users/me', { token: own.access })).status
        const result = await loginsDuring(server.url, user.username, change, d / 3, status === 200 ? 0 : d)
        t.equal(result.changed, status, `the change is answered ${status}`)
        answered += result.ok.length
        raced += result.raced
        survivors.push(...await alive(server.url, result.ok))
      }
      t.ok(raced > 0, `logins were in flight when the change was answered (${raced}; ${answered} answered 200)`)
      t.same(survivors, [], `no such login has a live session (${survivors.length} of ${answered} do)`)
    })
  }
})

t.test('F8: a compat token renewed on use is renewed once, however many copies race', async (t) => {
  await requireRedis(t)
  const { a, b } = await startPair(t, { redisUrl: REDIS_URL, env: { BCRYPT_COST: '12' } })
  const both = (token: string) => Promise.all([me(a.url, token), me(b.url, token)])

  for (const n of [8, 20]) {
    t.test(`${n} simultaneous POST /validate_token, split across two instances`, async (t) => {
      const user = await compatRegister(a.url)
      const token = (await authenticateUser(a.url, user.username)).body.token as string
      const answers = await burst(n, (i) => validateToken(i % 2 === 0 ? a.url : b.url, token))
      const renewed = answers.filter((r) => r.status === 200)
      t.equal(renewed.length, 1, `exactly one renewal (${renewed.length} of ${n})`)
      t.same(answers.map((r) => r.status).filter((s) => s !== 200 && s !== 401 && s !== 503), [], 'the others 401 (or 503)')
      if (renewed.length === 0) return
      t.same(await both(renewed[0].body.token), [200, 200], 'the renewed token works on both instances')
      t.same(await both(token), [401, 401], 'the original does not')
    })
  }

  t.test('PUT /user changing the password, racing POST /logout of the same token', async (t) => {
    const d = await loginTime(a.url)
    let logoutFirst = 0
    for (let trial = 0; trial < 6; trial++) {
      const user = await compatRegister(a.url)
      const token = (await authenticateUser(a.url, user.username)).body.token as string
      let putDone = false
      // Two hashes (current password, new one): the logout lands at a different point each time.
      const put = putUser(a.url, token, { current_password: user.password, password: NEW_PASSWORD })
        .then((r: Answer) => { putDone = true; return r })
      await sleep(trial * d / 3)
      const out = await compatLogout(b.url, token)
      const first = out.status === 200 && !putDone
      const updated = await put
      t.ok([200, 401, 503].includes(updated.status), `PUT /user answered ${updated.status}`)
      if (!first) continue
      logoutFirst++
      if (updated.status === 200) {
        t.same(await both(updated.body.token), [401, 401], `trial ${trial}: the token of a PUT that finished after the logout is dead`)
      }
    }
    t.ok(logoutFirst > 0, `the logout was answered before the PUT finished (${logoutFirst} of 6)`)
  })
})
