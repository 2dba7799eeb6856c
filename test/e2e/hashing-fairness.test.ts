import t from 'tap'
import { PASSWORD, startServer, uniqueName } from '../helper'
import { type Answer, loginVia, patchMeVia, registerVia, tally, tokenVia } from '../support/login-attempts'

// Issue 15, finding 4: 20-64 concurrent PATCHes from one address filled the password-hashing
// queue, so load shedding refused everyone else's logins (503) for as long as they went on.
// Each client now gets a few hashing slots; beyond them it is refused at once (429). A server
// process of its own, real sockets, expensive hashes.

const LOOPS = 32
const RETRIES = 4

t.test('a flood of PATCHes with current_password from one address sheds nobody else\'s login', async (t) => {
  const server = await startServer(t, { TRUST_PROXY: '1' })
  const attacker = '203.0.113.40'
  // Three accounts of the attacker's, so that the cap per address is what binds, not the one per user.
  // One at a time: at this cost a few at once could be shed on a busy machine.
  const tokens: string[] = []
  for (let i = 0; i < 3; i++) tokens.push(await tokenVia(server, attacker, await registerVia(server, attacker)))
  const victims: string[] = []
  for (let i = 0; i < 6; i++) victims.push(await registerVia(server, `198.51.100.${40 + i}`))

  // LOOPS concurrent loops, each sending its next PATCH (the right current_password, a new
  // name: every one is a full hash) the moment the last is answered, until the victims are done.
  const state = { flooding: true }
  const flood: Answer[] = []
  const loops = Array.from({ length: LOOPS }, async (_, i) => {
    while (state.flooding) {
      // A connection the loaded server could not take (reset) is the attacker's loss, counted as 0.
      flood.push(await patchMeVia(server, attacker, tokens[i % tokens.length], { username: uniqueName('flood'), current_password: PASSWORD })
        .catch(() => ({ status: 0, headers: {}, body: '' })))
    }
  })
  // The victims log in one after another, each from its own address, while the flood goes on.
  const logins: number[] = []
  let shed = 0
  try {
    while (flood.length < LOOPS) await new Promise((resolve) => setImmediate(resolve)) // the flood is under way
    for (const [i, victim] of victims.entries()) {
      // A shed login (503) is tried again after its Retry-After, as a client does: on a machine
      // starved of CPU the service sheds by itself (seen with a CPU hog on each core). Before
      // the fix the flood kept the queue full, and every try was shed for as long as it went on.
      let answer = await loginVia(server, `198.51.100.${40 + i}`, victim, PASSWORD)
      for (let tries = 1; answer.status === 503 && tries < RETRIES; tries++) {
        shed++
        await new Promise((resolve) => setTimeout(resolve, 1000 * Number(answer.headers['retry-after'] ?? 1)))
        answer = await loginVia(server, `198.51.100.${40 + i}`, victim, PASSWORD)
      }
      logins.push(answer.status)
    }
  } finally {
    state.flooding = false
    await Promise.all(loops)
  }
  const counts = tally(flood)
  t.ok((counts[429] ?? 0) > 0, `the attacker was refused past its share (${JSON.stringify(counts)})`)
  t.ok((counts[200] ?? 0) > 0, 'and served within it')
  t.same(logins, victims.map(() => 200), `every other user's login answered 200 (${shed} shed and tried again)`)
})
