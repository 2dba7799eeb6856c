import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { logLines, PASSWORD, REDIS_URL, redisPrefix, requireRedis, startServer, uniqueName, waitFor } from '../helper'
import { type Answer, checkRetryAfter, loginVia, pastTheLimit, post, registerVia, from, tally } from '../support/login-attempts'
import { LIMITS } from '../../plugins/app/rate-limits'

// Races are tested against real server processes, over one connection per request.

const BURST = 120
const PAIR = LIMITS.loginFailuresPerAccountIp.max

for (const store of ['memory', 'Redis'] as const) {
  t.test(`a burst of wrong passwords from one IP at one account (counters in ${store}): exactly the pair limit gets through, and the account is not locked by it`, async (t) => {
    if (store === 'Redis') await requireRedis(t)
    const server = await startServer(t, { TRUST_PROXY: '1', ...(store === 'Redis' ? { REDIS_URL, REDIS_PREFIX: redisPrefix() } : {}) })
    const victim = await registerVia(server, '198.51.100.1')
    const attacker = '203.0.113.10'
    const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => loginVia(server, attacker, victim, `wrong guess ${i}`)))
    const counts = tally(answers)
    t.same(pastTheLimit(answers).other, [])
    // Over its share of hashing slots a client is refused at once (429), and a shed answer
    // (503) is given back: at most the pair limit of wrong passwords was checked.
    t.ok((counts[401] ?? 0) <= PAIR, `at most ${PAIR} wrong passwords checked (${counts[401]})`)
    checkRetryAfter(t, answers, LIMITS.loginFailuresPerAccountIp.windowMs)
    // Whatever the slots let through, the pair is spent once PAIR failures are in.
    for (let i = 0; (await loginVia(server, attacker, victim, `more ${i}`)).status !== 429; i++) t.ok(i < PAIR, 'the pair limit holds')
    t.equal((await loginVia(server, attacker, victim, PASSWORD)).status, 429, 'the right password from that address too')
    const owner = await loginVia(server, '198.51.100.2', victim, PASSWORD)
    t.equal(owner.status, 200, 'the owner, from another IP: the burst spent only its pair\'s limit')
  })
}

t.test('the same burst split across two instances sharing Redis and the database: the pair limit holds in total', async (t) => {
  await requireRedis(t)
  const dir = mkdtempSync(join(tmpdir(), 'auth-rl-'))
  const env = { TRUST_PROXY: '1', REDIS_URL, REDIS_PREFIX: redisPrefix(), DATABASE_URL: `file:${join(dir, 'auth.db')}` }
  const one = await startServer(t, env)
  const two = await startServer(t, env)
  const victim = await registerVia(one, '198.51.100.3')
  const attacker = '203.0.113.11'
  // Sequentially, alternating instances: each answer is the shared counter's verdict.
  const answers: Answer[] = []
  for (let i = 0; i < PAIR + 5; i++) answers.push(await loginVia(i % 2 === 0 ? one : two, attacker, victim, `wrong guess ${i}`))
  t.same(tally(answers), { 401: PAIR, 429: 5 })
  checkRetryAfter(t, answers, LIMITS.loginFailuresPerAccountIp.windowMs)
  t.equal((await loginVia(two, attacker, victim, PASSWORD)).status, 429, 'the attacker\'s address is limited on the other instance too')
  t.equal((await loginVia(two, '198.51.100.4', victim, PASSWORD)).status, 200, 'the owner, from another IP, on either instance')
})

t.test('refreshes are limited per IP, counted before the work (invalid tokens included)', async (t) => {
  const server = await startServer(t, { TRUST_PROXY: '1' })
  const max = LIMITS.refreshesPerIp.max
  const answers = await Promise.all(Array.from({ length: max + 10 }, (_, i) =>
    post(server.url, '/auth/refresh', { refresh_token: `not-a-token-${i}` }, from('203.0.113.12'))))
  t.same(tally(answers), { 401: max, 429: 10 })
  checkRetryAfter(t, answers, LIMITS.refreshesPerIp.windowMs)
  const other = await post(server.url, '/auth/refresh', { refresh_token: 'not-a-token' }, from('203.0.113.13'))
  t.equal(other.status, 401, 'another client is not limited')
})

t.test('TRUST_PROXY=1: a client is counted under the address our proxy appended; rotating a forged X-Forwarded-For does not help', async (t) => {
  const server = await startServer(t, { TRUST_PROXY: '1' })
  const user = await registerVia(server, '198.51.100.6')
  const client = '203.0.113.14'
  const max = LIMITS.loginFailuresPerIp.max
  // Spraying unknown names, so that only the IP limit applies; each claims another origin.
  // One at a time: more at once than a client's hashing slots would be refused uncounted.
  const answers: Answer[] = []
  for (let i = 0; i < max + 10; i++) answers.push(await loginVia(server, client, uniqueName('spray'), 'Winter2026!', `192.0.2.${i}`))
  t.same(tally(answers), { 401: max, 429: 10 })
  t.equal((await loginVia(server, client, user, PASSWORD, '198.51.100.99')).status, 429, 'a fresh forged entry: still this client')
  t.equal((await loginVia(server, '198.51.100.99', user, PASSWORD)).status, 200, 'the address it claimed is not limited')
})

t.test('the request id in our logs is ours; a client\'s X-Request-Id is logged beside it as clientRequestId', async (t) => {
  const server = await startServer(t, { LOG_LEVEL: 'info' })
  const sent = 'whatever-the-client-sent'
  const failures = () => logLines(server).filter((l) => l.event === 'login.failure')
  await post(server.url, '/auth/login', { username: uniqueName('ghost'), password: 'a wrong password' }, { 'x-request-id': sent })
  await waitFor(async () => failures().length === 1)
  await post(server.url, '/auth/login', { username: uniqueName('ghost'), password: 'a wrong password' }, { 'x-request-id': 'x'.repeat(129) })
  await waitFor(async () => failures().length === 2)
  const [first, second] = failures()
  t.equal(first.clientRequestId, sent, 'the client\'s id, as its own field')
  t.type(first.reqId, 'string')
  t.not(first.reqId, sent, 'the request id is ours')
  t.notOk('clientRequestId' in second, 'an over-long X-Request-Id is ignored')
  t.not(second.reqId, first.reqId)
  t.notMatch(server.output(), /"reqId":"whatever/, 'no line is keyed by the client\'s id')
})
