import t from 'tap'
import { PASSWORD, startServer, uniqueName } from '../helper'
import {
  type Answer, checkRetryAfter, loginVia, patchMeVia, putUserVia, registerVia, tally, tokenVia
} from '../support/login-attempts'
import { LIMITS } from '../../plugins/app/rate-limits'

// Issue 15, finding 4: current_password is a password check like a login's (a stolen access
// token must not guess the password freely), and an answer shed by load shedding is never a
// failure. Real server processes, one connection per request.

const PER_SESSION = LIMITS.passwordFailuresPerSession.max
const PAIR = LIMITS.loginFailuresPerAccountIp.max

for (const route of ['PATCH /users/me', 'compat PUT /user'] as const) {
  t.test(`${route}: wrong current_password answers are limited per session, and the limit holds for the right one too`, async (t) => {
    const server = await startServer(t, { TRUST_PROXY: '1' })
    const owner = await registerVia(server, '198.51.100.30')
    const thief = '203.0.113.30'
    const token = await tokenVia(server, '198.51.100.30', owner) // the token the thief stole
    const change = route === 'PATCH /users/me' ? patchMeVia : putUserVia
    const guess = async (password: string) => await change(server, thief, token, { password: 'a brand new password 1', current_password: password })
    const answers: Answer[] = []
    for (let i = 0; i < PER_SESSION + 3; i++) answers.push(await guess(`guess ${i}`))
    t.same(tally(answers), { 403: PER_SESSION, 429: 3 }, `${PER_SESSION} guesses checked, then refused`)
    checkRetryAfter(t, answers, LIMITS.passwordFailuresPerSession.windowMs)
    const right = await guess(PASSWORD)
    t.equal(right.status, 429, 'the right current_password is refused too: the answer tells nothing')
    t.notMatch(right.body, PASSWORD)
    t.equal((await loginVia(server, '198.51.100.30', owner, PASSWORD)).status, 200, 'the password is unchanged, and the owner logs in')
  })
}

t.test('wrong current_password answers count like failed logins against the account and address pair', async (t) => {
  const server = await startServer(t, { TRUST_PROXY: '1' })
  const owner = await registerVia(server, '198.51.100.31')
  const thief = '203.0.113.31'
  // Sessions the thief holds, each spending its own limit, from one address.
  const sessions = await Promise.all(Array.from({ length: Math.ceil(PAIR / PER_SESSION) }, async () => await tokenVia(server, '198.51.100.31', owner)))
  let wrong = 0
  for (const token of sessions) {
    for (let i = 0; i < PER_SESSION && wrong < PAIR; i++, wrong++) {
      t.equal((await patchMeVia(server, thief, token, { username: uniqueName('x'), current_password: `guess ${wrong}` })).status, 403)
    }
  }
  t.equal((await loginVia(server, thief, owner, PASSWORD)).status, 429, 'the pair is spent: a login from that address is refused')
  t.equal((await loginVia(server, '198.51.100.31', owner, PASSWORD)).status, 200, 'the owner, from the owner\'s address')
})
