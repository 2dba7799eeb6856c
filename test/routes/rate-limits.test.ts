import t, { type Test } from 'tap'
import { mkdtempSync } from 'node:fs'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PASSWORD, REDIS_URL, redisPrefix, requireRedis, startServer, uniqueName, waitFor, type RunningServer } from '../helper'
import { LIMITS } from '../../plugins/app/rate-limits'

// Races are tested against real server processes, over one connection per request.

interface Answer { status: number, headers: IncomingHttpHeaders, body: string }

/** One POST on a connection of its own (no keep-alive agent): N calls at once are N sockets. */
function post (base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers }
    }, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { data += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }))
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** Behind TRUST_PROXY=1 the test plays the proxy: it appends the client's address to X-Forwarded-For. */
const from = (clientIp: string, forged?: string) => ({ 'x-forwarded-for': forged === undefined ? clientIp : `${forged}, ${clientIp}` })

const loginVia = (server: RunningServer, clientIp: string, username: string, password: string, forged?: string) =>
  post(server.url, '/auth/login', { username, password }, from(clientIp, forged))

async function registerVia (server: RunningServer, clientIp: string, username = uniqueName()) {
  const res = await post(server.url, '/auth/register', { username, password: PASSWORD }, from(clientIp))
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.body}`)
  return username
}

function tally (answers: Answer[]) {
  const counts: Record<number, number> = {}
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1
  return counts
}

/**
 * Login answers that got past the limiter: refused after hashing (401), or shed by the
 * password-hashing queue when too many were queued at once (503). Either way the attempt
 * was counted before any work, which is what these tests are about.
 */
function pastTheLimit (answers: Answer[]) {
  const counts = tally(answers)
  const other = Object.keys(counts).map(Number).filter((s) => s !== 401 && s !== 429 && s !== 503)
  return { counted: (counts[401] ?? 0) + (counts[503] ?? 0), limited: counts[429] ?? 0, other }
}

/** Every 429 says when to come back: a whole number of seconds within the window. */
function checkRetryAfter (t: Test, answers: Answer[], windowMs: number) {
  const limited = answers.filter((a) => a.status === 429)
  const bad = limited.filter((a) => {
    const s = Number(a.headers['retry-after'])
    return !Number.isInteger(s) || s < 1 || s > windowMs / 1000
  })
  t.equal(bad.length, 0, `every 429 has a Retry-After in 1..${windowMs / 1000} s (${limited.length} checked)`)
}

const BURST = 120

for (const store of ['memory', 'Redis'] as const) {
  t.test(`a burst of wrong passwords from one IP (counters in ${store}): exactly the IP limit gets through, and the account is not locked by it`, async (t) => {
    if (store === 'Redis') await requireRedis(t)
    const server = await startServer(t, { TRUST_PROXY: '1', ...(store === 'Redis' ? { REDIS_URL, REDIS_PREFIX: redisPrefix() } : {}) })
    const victim = await registerVia(server, '198.51.100.1')
    const attacker = '203.0.113.10'
    const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => loginVia(server, attacker, victim, `wrong guess ${i}`)))
    t.same(pastTheLimit(answers), { counted: LIMITS.loginFailuresPerIp.max, limited: BURST - LIMITS.loginFailuresPerIp.max, other: [] }, '50 got past the limiter, 70 never reached hashing')
    checkRetryAfter(t, answers, LIMITS.loginFailuresPerIp.windowMs)
    const owner = await loginVia(server, '198.51.100.2', victim, PASSWORD)
    t.equal(owner.status, 200, 'the owner, from another IP: the burst spent only 50 of the account\'s 100')
  })
}

t.test('the same burst split across two instances sharing Redis and the database: 50 in total get through', async (t) => {
  await requireRedis(t)
  const dir = mkdtempSync(join(tmpdir(), 'auth-rl-'))
  const env = { TRUST_PROXY: '1', REDIS_URL, REDIS_PREFIX: redisPrefix(), DATABASE_URL: `file:${join(dir, 'auth.db')}` }
  const one = await startServer(t, env)
  const two = await startServer(t, env)
  const victim = await registerVia(one, '198.51.100.3')
  const attacker = '203.0.113.11'
  const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => loginVia(i % 2 === 0 ? one : two, attacker, victim, `wrong guess ${i}`)))
  t.same(pastTheLimit(answers), { counted: LIMITS.loginFailuresPerIp.max, limited: BURST - LIMITS.loginFailuresPerIp.max, other: [] })
  checkRetryAfter(t, answers, LIMITS.loginFailuresPerIp.windowMs)
  t.equal((await loginVia(two, attacker, victim, PASSWORD)).status, 429, 'the attacker\'s IP is limited on the other instance too')
  t.equal((await loginVia(two, '198.51.100.4', victim, PASSWORD)).status, 200, 'the owner, from another IP, on either instance')
})

t.test('a distributed burst against one account (one guess per IP) locks it at the account limit, even for the right password', async (t) => {
  const server = await startServer(t, { TRUST_PROXY: '1' })
  const victim = await registerVia(server, '198.51.100.5')
  const bystander = await registerVia(server, '198.51.100.5')
  // In waves of 20 at once: 100 hashes queued together would outlast a socket's patience.
  const answers: Answer[] = []
  for (let wave = 0; wave < BURST / 20; wave++) {
    answers.push(...await Promise.all(Array.from({ length: 20 }, (_, j) => {
      const i = wave * 20 + j
      return loginVia(server, `10.1.${i >> 8}.${i & 255}`, victim, `wrong guess ${i}`)
    })))
  }
  t.same(pastTheLimit(answers), { counted: LIMITS.loginFailuresPerAccount.max, limited: BURST - LIMITS.loginFailuresPerAccount.max, other: [] })
  checkRetryAfter(t, answers, LIMITS.loginFailuresPerAccount.windowMs)
  const locked = await loginVia(server, '10.9.9.9', victim.toUpperCase(), PASSWORD)
  t.equal(locked.status, 429, 'the right password, from a fresh IP, any case of the name')
  t.same(Object.keys(JSON.parse(locked.body)).sort(), ['error', 'message', 'statusCode'])
  checkRetryAfter(t, [locked], LIMITS.loginFailuresPerAccount.windowMs)
  t.equal((await loginVia(server, '10.9.9.9', bystander, PASSWORD)).status, 200, 'another account is fine')
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
  const answers = await Promise.all(Array.from({ length: max + 10 }, (_, i) =>
    loginVia(server, client, uniqueName('spray'), 'Winter2026!', `192.0.2.${i}`)))
  t.same(pastTheLimit(answers), { counted: max, limited: 10, other: [] })
  t.equal((await loginVia(server, client, user, PASSWORD, '198.51.100.99')).status, 429, 'a fresh forged entry: still this client')
  t.equal((await loginVia(server, '198.51.100.99', user, PASSWORD)).status, 200, 'the address it claimed is not limited')
})

t.test('the request id in our logs is ours; a client\'s X-Request-Id is logged beside it as clientRequestId', async (t) => {
  const server = await startServer(t, { LOG_LEVEL: 'info' })
  const sent = 'whatever-the-client-sent'
  const failures = () => server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.event === 'login.failure')
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
