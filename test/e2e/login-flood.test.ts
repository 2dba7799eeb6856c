import t, { type Test } from 'tap'
import { request } from 'node:http'
import { availableParallelism } from 'node:os'
import { logLines, PASSWORD, startServer, uniqueName, waitFor } from '../helper'
import { parseMetrics } from '../support/prometheus'

const METRICS_TOKEN = 'flood-metrics-token-for-tests'

// The server's bcrypt threads: the same formula as src/security/bcrypt-pool.ts, same machine.
const THREADS = Math.max(2, availableParallelism())

interface Answer { status: number, retryAfter?: string, body: any }

/** One request on a connection of its own (no agent, no keep-alive). */
function send (base: string, method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    const req = request({ hostname, port, method, path, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body: text === '' ? undefined : JSON.parse(text) }))
    })
    // Not a timing assertion: only so that a request the server never answers fails the
    // test instead of hanging it. 60 s was too short for one registration at cost 13 with a CPU
    // hog on each core and two other suites running (the nice-19 hashing threads starve).
    req.setTimeout(600_000, () => req.destroy(new Error(`${method} ${path}: no answer`)))
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

/** Sends a login and closes the socket as soon as the request is written: a client that gave up. */
function loginAndLeave (base: string, username: string, password: string): Promise<void> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve) => {
    const req = request({ hostname, port, method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json' }, agent: false })
    req.on('error', () => {}) // the socket is ours to destroy
    req.end(JSON.stringify({ username, password }), () => {
      req.destroy()
      resolve()
    })
  })
}

const count = (text: string, needle: string) => text.split(needle).length - 1

/**
 * A set-up request, sent again while it is shed (503, nothing done): at BCRYPT_COST 13 on a busy
 * machine even a lone hash can outlast the shedding budget, and the set-up is not under test.
 */
async function setUp (base: string, path: string, body: unknown): Promise<Answer> {
  let answer: Answer | undefined
  await waitFor(async () => (answer = await send(base, 'POST', path, body)).status !== 503, 120_000)
  return answer!
}

async function userWithToken (t: Test, base: string) {
  const username = uniqueName('flood')
  t.equal((await setUp(base, '/auth/register', { username, password: PASSWORD })).status, 201)
  const login = await setUp(base, '/auth/login', { username, password: PASSWORD })
  t.equal(login.status, 200)
  const token = login.body.access_token as string
  // The session this set-up login started: its login.success line may reach the log after
  // its answer, so a test that counts logins afterwards tells it apart by this id.
  const sid = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid as string
  return { username, token, sid }
}

t.test('a login flood: excess logins get 503 + Retry-After at once, the rest are answered, token reads stay 200', async (t) => {
  const server = await startServer(t, { BCRYPT_COST: '13', RATE_LIMITS: 'off', METRICS_TOKEN })
  const { username, token } = await userWithToken(t, server.url)
  const scrape = async () => parseMetrics(await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text())
  const before = await scrape()

  // Far more logins than the threads can hash in 2 s, each over its own connection. Even
  // ones carry the right password.
  const size = Math.max(80, 12 * THREADS)
  const state = { flooding: true }
  const flood = Promise.all(Array.from({ length: size }, (_, i) =>
    send(server.url, 'POST', '/auth/login', { username, password: i % 2 === 0 ? PASSWORD : 'wrong horse battery staple' })))
    .finally(() => { state.flooding = false })

  // Token reads, one after the other, for as long as the flood lasts.
  const reads: number[] = []
  do reads.push((await send(server.url, 'GET', '/users/me', undefined, token)).status)
  while (state.flooding)
  const answers = await flood

  const shed = answers.filter((a) => a.status === 503)
  t.ok(shed.length > 0, `some logins were shed (${shed.length} of ${size})`)
  t.ok(shed.length < size, 'and some were not')
  for (const a of shed) {
    t.match(a.retryAfter, /^[1-9]\d*$/, 'Retry-After: whole seconds, at least 1')
    t.same(Object.keys(a.body).sort(), ['error', 'message', 'statusCode'])
    t.match(a.body, { statusCode: 503, error: 'Service Unavailable', message: String })
  }
  for (const [i, a] of answers.entries()) {
    if (a.status !== 503) t.equal(a.status, i % 2 === 0 ? 200 : 401, `login ${i} answered as its password deserves`)
  }
  t.ok(reads.length >= 1)
  t.same(reads, reads.map(() => 200), `every token read during the flood answered 200 (${reads.length})`)

  // What an operator sees: every shed login counted as such, and the rest by outcome.
  const after = await scrape()
  const moved = (name: string, labels?: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
  t.equal(moved('auth_logins_total', { outcome: 'shed' }), shed.length, 'auth_logins_total{outcome="shed"} counts the 503s')
  t.equal(moved('auth_password_hashing_shed_total'), shed.length)
  t.equal(moved('auth_logins_total', { outcome: 'success' }) + moved('auth_logins_total', { outcome: 'bad_credentials' }), size - shed.length)

  // The queue drained: the service takes logins again.
  t.equal((await send(server.url, 'POST', '/auth/login', { username, password: PASSWORD })).status, 200)
  t.notOk(server.output().includes(PASSWORD), 'the password never reached the log')
})

t.test('clients that give up: their queued hashing is dropped, never run', async (t) => {
  // Cost 13: the blockers keep the threads busy for long enough that the server has seen
  // every gone client's socket close before a thread comes free. Load shedding is set out
  // of the way (it would refuse the gone clients' logins outright on a busy machine).
  const server = await startServer(t, { BCRYPT_COST: '13', RATE_LIMITS: 'off', HASHING_MAX_WAIT_MS: '600000' })
  const { username, sid } = await userWithToken(t, server.url)
  // The set-up login's log lines can reach the pipe after its answer did: wait until its
  // success line is in, so that nothing of it is counted below (a late one was, under load).
  await waitFor(async () => logLines(server, 0).some((l) => l.event === 'login.success' && l.sessionId === sid), 10_000)

  // One login per thread keeps every thread busy (unknown user: 401 after a full hash).
  const from = server.output().length
  const blockers = Array.from({ length: THREADS }, () => send(server.url, 'POST', '/auth/login', { username: uniqueName('nobody'), password: PASSWORD }))
  await waitFor(async () => count(server.output().slice(from), 'incoming request') >= THREADS, 10_000)

  // Then clients with the right password, which leave as soon as their request is sent:
  // their jobs wait behind the blockers, and must never run.
  const gone = 4
  await Promise.all(Array.from({ length: gone }, () => loginAndLeave(server.url, username, PASSWORD)))
  const blocked = await Promise.all(blockers)
  t.same(blocked.map((b) => b.status), blocked.map(() => 401), 'the blockers were answered')

  const lines = () => logLines(server, from)
  // Every client that left is accounted for: dropped from the queue, or (on a machine so
  // loaded that the queue had no room) refused with 503 before queueing.
  const dropped = () => lines().filter((l) => l.event === 'password_hashing.dropped').length
  const refused = () => lines().filter((l) => l.err?.type === 'OverloadedError').length
  await waitFor(async () => dropped() + refused() >= gone, 10_000).catch(() => {}) // asserted below
  t.equal(dropped() + refused(), gone, 'each gone client was dropped or refused')
  t.ok(dropped() >= 1, `queued work of gone clients was dropped (${dropped()} of ${gone})`)
  t.equal(lines().filter((l) => l.event === 'login.success').length, 0, 'no gone client\'s password was checked: no login succeeded')

  // The pool is not stuck: a login afterwards works.
  t.equal((await send(server.url, 'POST', '/auth/login', { username, password: PASSWORD })).status, 200)
})
