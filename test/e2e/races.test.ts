import t from 'tap'
import { startServer } from '../helper'
import { call, login, me, refresh, register, session, sleep, type Answer } from '../support/http'

// Requests that race, against a real service process (npm run build first), each over a
// connection of its own. docs/api.md, Tokens and sessions, "Concurrency": a login that checked the old password
// never yields a session that outlives the password change or account deletion that raced it.

const NEW_PASSWORD = 'an entirely new passphrase'

/** A login, timed: one bcrypt at the server's cost, under whatever load the machine has now. */
async function timedSession (base: string, username: string) {
  const started = Date.now()
  const pair = await session(base, username)
  return { ...pair, ms: Date.now() - started }
}

/**
 * Fires `change` `lead` ms after the first of up to 12 logins with the password the user had
 * before. A new login starts every `step` ms until the change is answered, each over its own
 * connection, while fewer than 3 are in flight: enough to keep both bcrypt threads busy, few
 * enough that the change never waits long behind them. Returns the change's status, the token
 * pairs of the logins answered 200, and how many logins were in flight when the change was
 * answered (sent before, answered after).
 */
async function loginsDuring (base: string, username: string, change: () => Promise<number>, step: number, lead: number) {
  const logins: Array<Promise<Answer>> = []
  const state = { changing: true, inFlight: 0, raced: 0 }
  const firing = (async () => {
    while (state.changing && logins.length < 12) {
      if (state.inFlight < 3) {
        state.inFlight++
        logins.push(login(base, username).then(
          (answer) => { if (!state.changing) state.raced++; return answer },
          // a login the server dropped (an overloaded machine) was not answered 200
          () => ({ status: 0, body: null })
        ).finally(() => { state.inFlight-- }))
      }
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
  const server = await startServer(t, { BCRYPT_COST: '12', RATE_LIMITS: 'off', HASHING_MAX_WAIT_MS: '600000' }) // a wide window; no load shedding (CI saw the change shed, 503, at load 16)

  for (const [name, status] of [['password change (PATCH /users/me)', 200], ['account deletion (DELETE /users/me)', 204]] as const) {
    t.test(name, async (t) => {
      let answered = 0
      let raced = 0
      const survivors: string[] = []
      for (let round = 0; round < 3; round++) {
        const user = await register(server.url)
        // Logins start every half login-time: as fast as two bcrypt threads finish them.
        const own = await timedSession(server.url, user.username)
        const change = status === 200
          // two hashes (the current password, the new one): logins start from the first
          ? async () => (await call(server.url, 'PATCH', '/users/me', { token: own.access, body: { current_password: user.password, password: NEW_PASSWORD } })).status
          // no hash at all: fire it while several logins are being hashed
          : async () => (await call(server.url, 'DELETE', '/users/me', { token: own.access })).status
        const result = await loginsDuring(server.url, user.username, change, own.ms / 2, status === 200 ? 0 : 2 * own.ms)
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
