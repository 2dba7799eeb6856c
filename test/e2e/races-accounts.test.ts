import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { REDIS_URL, requireRedis } from '../helper'
import { startPair } from '../support/cluster'
import { burst, call, login, me, refresh, register, session } from '../support/http'
import { awayFromStepBoundary, codeAt } from '../support/accounts'

// docs/api.md, "Accounts": the "once" rules and the disable rule, with requests that race for
// real: two service processes (one database, one Redis), each request over its own socket.
const run = promisify(execFile)
const N = 8

async function withTotp (base: string, username: string) {
  const s = await session(base, username)
  await awayFromStepBoundary()
  const enrolled = await call(base, 'POST', '/users/me/mfa/totp', { token: s.access, body: { current_password: 'correct horse battery staple' } })
  const confirmed = await call(base, 'POST', '/users/me/mfa/totp/confirm', { token: s.access, body: { code: codeAt(enrolled.body.secret, -1) } })
  if (confirmed.status !== 200) throw new Error(`confirm: ${confirmed.status}`)
  return { secret: enrolled.body.secret as string, recovery: confirmed.body.recovery_codes as string[] }
}

async function mfaTokens (bases: string[], username: string, n: number) {
  const tokens: string[] = []
  for (let i = 0; i < n; i++) tokens.push((await login(bases[i % 2], username)).body.mfa_token)
  return tokens
}

t.test('accounts races, two processes', async (t) => {
  await requireRedis(t)
  // Cost 11 (over 100 ms a hash): the disable below must be answered while logins are still
  // hashing. It was 12, twice the CPU for some 45 hashes; 10 left a busy machine too little.
  const pair = await startPair(t, { redisUrl: REDIS_URL, env: { BCRYPT_COST: '11', HASHING_MAX_WAIT_MS: '600000' } })
  const bases = [pair.a.url, pair.b.url]
  const baseOf = (i: number) => bases[i % 2]

  t.test('one TOTP code sent N times at once (on both instances, each with its own mfa_token): one wins', async (t) => {
    const u = await register(pair.a.url)
    const { secret } = await withTotp(pair.a.url, u.username)
    const tokens = await mfaTokens(bases, u.username, N)
    const code = codeAt(secret)
    const answers = await burst(N, baseOf, (target, i) => call(target, 'POST', '/auth/login/mfa', { body: { mfa_token: tokens[i], code } }))
    const statuses = answers.map((a) => a.status)
    t.equal(statuses.filter((s) => s === 200).length, 1, `exactly one 200 (${statuses.join(' ')})`)
    t.equal(statuses.filter((s) => s === 401).length, N - 1, 'the others 401')
  })

  t.test('one recovery code sent N times at once: one wins', async (t) => {
    const u = await register(pair.a.url)
    const { recovery } = await withTotp(pair.a.url, u.username)
    const tokens = await mfaTokens(bases, u.username, N)
    const answers = await burst(N, baseOf, (target, i) =>
      call(target, 'POST', '/auth/login/mfa', { body: { mfa_token: tokens[i], recovery_code: recovery[0] } }))
    const statuses = answers.map((a) => a.status)
    t.equal(statuses.filter((s) => s === 200).length, 1, `exactly one 200 (${statuses.join(' ')})`)
    t.equal(statuses.filter((s) => s === 401).length, N - 1, 'the others 401')
  })

  t.test('one reset token used N times at once: one wins; first admin made with npm run admin', async (t) => {
    const boss = await register(pair.a.url)
    const cli = await run(process.execPath, [join(__dirname, '..', '..', 'node_modules', 'tsx', 'dist', 'cli.mjs'),
      join(__dirname, '..', '..', 'scripts', 'admin.ts'), 'grant', boss.username], {
      env: { PATH: process.env.PATH, DATABASE_URL: pair.databaseUrl }, timeout: 60_000
    })
    t.match(cli.stdout, /is an admin/)
    const bossToken = (await session(pair.b.url, boss.username)).access
    const u = await register(pair.a.url)
    const issued = await call(pair.b.url, 'POST', `/admin/users/${u.id}/password-reset`, { token: bossToken })
    t.equal(issued.status, 200)
    const answers = await burst(N, baseOf, (target, i) => call(target, 'POST', '/auth/password/reset', {
      body: { reset_token: issued.body.reset_token, new_password: `new passphrase number ${i}` }
    }))
    const statuses = answers.map((a) => a.status)
    t.equal(statuses.filter((s) => s === 204).length, 1, `exactly one 204 (${statuses.join(' ')})`)
    // 503: refused by load shedding before any hashing (a burst of bcrypt on a busy machine)
    t.equal(statuses.filter((s) => s === 400 || s === 503).length, N - 1, 'the others 400 (or shed, 503)')
    const winner = statuses.indexOf(204)
    t.equal((await login(pair.a.url, u.username, `new passphrase number ${winner}`)).status, 200, 'the winner\'s password is set')
    const loser = (winner + 1) % N
    t.equal((await login(pair.a.url, u.username, `new passphrase number ${loser}`)).status, 401, 'no other')

    t.test('a disable racing logins in bcrypt: no login yields a live session', async (t) => {
      const v = await register(pair.a.url)
      let raced = 0
      let disabled = false
      // Logins in flight on both instances (bcrypt at cost 11), then the disable.
      const logins = Array.from({ length: 6 }, (_, i) => login(bases[i % 2], v.username).then((a) => {
        if (disabled) raced++
        return a
      }))
      const answer = await call(bases[1], 'POST', `/admin/users/${v.id}/disable`, { token: bossToken })
      disabled = true
      t.equal(answer.status, 200)
      const results = await Promise.all(logins)
      const living: string[] = []
      for (const r of results.filter((a) => a.status === 200)) {
        const access = await me(pair.a.url, r.body.access_token)
        const renewed = (await refresh(pair.b.url, r.body.refresh_token)).status
        if (access === 200 || renewed === 200) living.push(`me ${access}, refresh ${renewed}`)
      }
      t.same(living, [], 'every session of a login that raced the disable is dead')
      t.ok(results.every((r) => [200, 401, 403, 503].includes(r.status)), `statuses ${results.map((r) => r.status).join(' ')}`)
      t.ok(raced > 0, `logins were still in flight when the disable was answered (${raced})`)
      t.equal((await login(pair.b.url, v.username)).status, 403, 'then: 403 Account disabled')
    })
  })
})
