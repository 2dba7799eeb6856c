import t from 'tap'
import { REDIS_URL, requireRedis } from '../helper'
import { startPair } from '../support/cluster'
import { authenticateUser, burst, compatLogout, compatRegister, me, putUser, sleep, validateToken, type Answer } from '../support/http'

// Seed 000's tokens renew on use, raced across two service processes (npm run build first)
// that share one database and one Redis, each request over a connection of its own.
// docs/api.md, Tokens and sessions, "Concurrency": a token renewed on use is renewed at most once.

const NEW_PASSWORD = 'an entirely new passphrase'

t.test('F8: a compat token renewed on use is renewed once, however many copies race', async (t) => {
  await requireRedis(t)
  const { a, b } = await startPair(t, { redisUrl: REDIS_URL, env: { BCRYPT_COST: '12' } })
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
})
