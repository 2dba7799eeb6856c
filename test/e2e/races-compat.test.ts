import t from 'tap'
import { DIALECT, REDIS_URL, requireRedis, testDatabase, uniqueName } from '../helper'
import { startPair } from '../support/cluster'
import { authenticateUser, burst, call, compatLogout, compatRegister, me, putUser, sleep, validateToken, type Answer } from '../support/http'

// Seed 000's tokens renew on use, raced across two service processes (npm run build first)
// that share one database and one Redis, each request over a connection of its own. On
// SQLite here, on PostgreSQL in races-compat.postgres.test.ts.
// docs/api.md, Tokens and sessions, "Concurrency": a token renewed on use is renewed at most once.

const NEW_PASSWORD = 'an entirely new passphrase'

t.test('F8: a compat token renewed on use is renewed once, however many copies race', async (t) => {
  await requireRedis(t)
  const databaseUrl = await testDatabase(t)
  // The tests' own cost (4) where no window is needed: renewals and renames race each other,
  // not a hash. The PUT racing a logout has a pair of its own below.
  const { a, b } = await startPair(t, { redisUrl: REDIS_URL, databaseUrl, env: { HASHING_MAX_WAIT_MS: '600000' } })
  const both = (token: string) => Promise.all([me(a.url, token), me(b.url, token)])

  for (const n of [8, 20]) {
    t.test(`${n} simultaneous POST /validate_token, split across two instances`, async (t) => {
      const user = await compatRegister(a.url)
      const token = (await authenticateUser(a.url, user.username)).body.token as string
      const answers = await burst(n, (i) => (i % 2 === 0 ? a.url : b.url), (target) => validateToken(target, token))
      const renewed = answers.filter((r) => r.status === 200)
      t.equal(renewed.length, 1, `exactly one renewal (${renewed.length} of ${n})`)
      t.same(answers.map((r) => r.status).filter((s) => s !== 200 && s !== 401 && s !== 503), [], 'the others 401 (or 503)')
      if (renewed.length === 0) return
      t.same(await both(renewed[0].body.token), [200, 200], 'the renewed token works on both instances')
      t.same(await both(token), [401, 401], 'the original does not')
    })
  }

  t.test('PUT /user changing the password, racing POST /logout of the same token', async (t) => {
    // Cost 12 (a few hundred ms a hash): the logout must land while the PUT hashes (at 10, on
    // a busy CI machine, no logout was answered before the PUT in 6 trials).
    const { a, b } = await startPair(t, { redisUrl: REDIS_URL, databaseUrl, env: { BCRYPT_COST: '12', HASHING_MAX_WAIT_MS: '600000' } })
    const both = (token: string) => Promise.all([me(a.url, token), me(b.url, token)])
    let logoutFirst = 0
    for (let trial = 0; trial < 6; trial++) {
      const user = await compatRegister(a.url)
      const started = Date.now()
      const token = (await authenticateUser(a.url, user.username)).body.token as string
      const d = Date.now() - started // one bcrypt
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

  t.test(`parallel PUT /user renames with one token: only the request that renewed it renames (${DIALECT})`, async (t) => {
    const wrong: string[] = []
    let races = 0
    for (const [trials, n] of [[10, 2], [5, 8]]) {
      for (let trial = 0; trial < trials; trial++) {
        // A new account for each trial: one account's renewals are limited (429)
        const user = await compatRegister(a.url)
        const token = (await authenticateUser(a.url, user.username)).body.token as string
        const names = Array.from({ length: n }, () => uniqueName('renamed'))
        const answers = await burst(n, (i) => (i % 2 === 0 ? a.url : b.url), (target, i) => putUser(target, token, { username: names[i] }))
        const statuses = answers.map((r) => r.status)
        const renamed = statuses.flatMap((s, i) => (s === 200 ? [names[i]] : []))
        const label = `${n} PUTs, trial ${trial} (${statuses.join(',')})`
        if (renamed.length !== 1 || statuses.some((s) => s !== 200 && s !== 401)) {
          wrong.push(`${label}: not one 200 and the rest 401`)
          continue
        }
        races++
        // The account's name now, read with the token the 200 renewed (no login: no bcrypt).
        const renewed = answers[statuses.indexOf(200)].body.token as string
        const profile = await call(b.url, 'GET', '/users/me', { token: renewed })
        if (profile.status !== 200 || profile.body.username !== renamed[0]) {
          wrong.push(`${label}: the account is named ${profile.body?.username}, the 200 renamed it ${renamed[0]}`)
        }
      }
    }
    t.equal(races, 15, 'every race answered one 200, the rest 401')
    t.same(wrong, [], `a PUT answered 401 renamed nothing (${wrong.length} of 15 trials wrong)`)
  })
})
