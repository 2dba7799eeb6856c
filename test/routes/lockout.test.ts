import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PASSWORD, REDIS_URL, redisPrefix, requireRedis, startServer, type RunningServer } from '../helper'
import { type Answer, checkRetryAfter, loginVia, registerVia, tally } from '../support/login-attempts'
import { LIMITS } from '../../plugins/app/rate-limits'

// Issue 15, finding 3: failed logins from other addresses must never lock the owner out of
// an address the owner has logged in from, and the per-account limit must not be a switch
// that a few addresses can flip. Real server processes, one connection per request.

const PAIR = LIMITS.loginFailuresPerAccountIp.max
const ACCOUNT = LIMITS.loginFailuresPerAccount.max

/**
 * Wrong guesses at `victim`, one per fresh address, in waves of 20 at once, until a whole
 * wave is refused (429): shed answers (503) are not failures, so the number of waves is not
 * known in advance. Returns every answer.
 */
async function distributedUntilRefused (server: (i: number) => RunningServer, victim: string) {
  const answers: Answer[] = []
  for (let wave = 0; wave < 30; wave++) {
    const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => {
      const i = wave * 20 + j
      return loginVia(server(i), `10.1.${i >> 8}.${i & 255}`, victim, `wrong guess ${i}`)
    }))
    answers.push(...batch)
    if (batch.every((a) => a.status === 429)) return answers
  }
  throw new Error(`never refused: ${JSON.stringify(tally(answers))}`)
}

t.test('a distributed attack (one guess per address) stops at the account limit for new addresses, never for the owner\'s', async (t) => {
  const server = await startServer(t, { TRUST_PROXY: '1' })
  const victim = await registerVia(server, '198.51.100.5')
  const bystander = await registerVia(server, '198.51.100.5')
  t.equal((await loginVia(server, '198.51.100.5', victim, PASSWORD)).status, 200, 'the owner logs in from home')
  const answers = await distributedUntilRefused(() => server, victim)
  t.equal(tally(answers)[401], ACCOUNT, `exactly ${ACCOUNT} wrong passwords were checked`)
  t.same(Object.keys(tally(answers)).filter((s) => !['401', '429', '503'].includes(s)), [])
  checkRetryAfter(t, answers, LIMITS.loginFailuresPerAccount.windowMs)
  const fresh = await loginVia(server, '10.9.9.9', victim.toUpperCase(), PASSWORD)
  t.equal(fresh.status, 429, 'the right password from an address the owner never used, any case of the name: refused while the attack lasts')
  t.same(Object.keys(JSON.parse(fresh.body)).sort(), ['error', 'message', 'statusCode'])
  checkRetryAfter(t, [fresh], LIMITS.loginFailuresPerAccount.windowMs)
  t.equal((await loginVia(server, '198.51.100.5', victim.toUpperCase(), PASSWORD)).status, 200,
    'the owner, from the address it logged in from before: never locked out')
  t.equal((await loginVia(server, '10.9.9.9', bystander, PASSWORD)).status, 200, 'another account is fine')
})

t.test('100 wrong passwords from two addresses lock neither the owner\'s address nor a new one', async (t) => {
  const server = await startServer(t, { TRUST_PROXY: '1' })
  const victim = await registerVia(server, '198.51.100.8')
  t.equal((await loginVia(server, '198.51.100.8', victim, PASSWORD)).status, 200)
  const answers: Answer[] = []
  for (let i = 0; i < 50; i++) {
    answers.push(...await Promise.all(['203.0.113.20', '203.0.113.21'].map(async (ip) => await loginVia(server, ip, victim, `wrong guess ${i}`))))
  }
  const counts = tally(answers)
  t.ok((counts[401] ?? 0) <= 2 * PAIR, `each address got at most its pair limit of checks (${counts[401]} of ${2 * PAIR})`)
  t.ok((counts[429] ?? 0) >= 100 - 2 * PAIR, 'the rest were refused')
  t.equal((await loginVia(server, '198.51.100.8', victim, PASSWORD)).status, 200, 'the owner at home')
  t.equal((await loginVia(server, '198.51.100.9', victim, PASSWORD)).status, 200, 'the owner somewhere new')
})

t.test('two instances sharing Redis: an address the owner used on one instance stays open on the other through a distributed attack', async (t) => {
  await requireRedis(t)
  const dir = mkdtempSync(join(tmpdir(), 'auth-rl-'))
  const env = { TRUST_PROXY: '1', REDIS_URL, REDIS_PREFIX: redisPrefix(), DATABASE_URL: `file:${join(dir, 'auth.db')}` }
  const one = await startServer(t, env)
  const two = await startServer(t, env)
  const victim = await registerVia(one, '198.51.100.10')
  t.equal((await loginVia(one, '198.51.100.10', victim, PASSWORD)).status, 200, 'the owner logs in on one instance')
  const answers = await distributedUntilRefused((i) => i % 2 === 0 ? one : two, victim)
  t.equal(tally(answers)[401], ACCOUNT, 'the account limit is shared by the instances')
  t.equal((await loginVia(two, '10.9.9.10', victim, PASSWORD)).status, 429, 'a new address, on the other instance')
  t.equal((await loginVia(two, '198.51.100.10', victim, PASSWORD)).status, 200, 'the owner\'s address, on the other instance')
})
