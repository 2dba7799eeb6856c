import t from 'tap'
import { build, bearer, login, newUser, PASSWORD, register, uniqueName, type App } from '../helper'
import { awayFromStepBoundary, codeAt } from '../support/accounts'

// docs/api.md, "Accounts: two-factor, administration, password upgrades", over HTTP.

type User = Awaited<ReturnType<typeof newUser>>

async function admin (app: App) {
  const u = await newUser(app)
  t.ok(await app.accountsRepository.setRole(u.username, 'admin', true))
  return u
}

async function enrol (app: App, u: User) {
  const res = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: u.auth, payload: { current_password: PASSWORD } })
  if (res.statusCode !== 200) throw new Error(`enrol: ${res.statusCode} ${res.body}`)
  return res.json() as { secret: string, otpauth_uri: string }
}

/** TOTP on, confirmed with the previous step's code (so that steps 0 and +1 stay free for logins). */
async function withTotp (app: App, u: User) {
  await awayFromStepBoundary()
  const { secret } = await enrol(app, u)
  const res = await app.inject({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: u.auth, payload: { code: codeAt(secret, -1) } })
  if (res.statusCode !== 200) throw new Error(`confirm: ${res.statusCode} ${res.body}`)
  return { secret, recovery: res.json().recovery_codes as string[] }
}

const step1 = async (app: App, username: string, password = PASSWORD) =>
  await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
const step2 = async (app: App, payload: Record<string, string>) =>
  await app.inject({ method: 'POST', url: '/auth/login/mfa', payload })

t.test('TOTP: enrol, confirm, two-step login', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const other = await login(app, u.username)

  const wrongPw = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: u.auth, payload: { current_password: 'not the password' } })
  t.equal(wrongPw.statusCode, 403, 'enrol: wrong password 403')
  const nothing = await app.inject({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: u.auth, payload: { code: '123456' } })
  t.equal(nothing.statusCode, 409, 'confirm without an enrolment: 409')

  await awayFromStepBoundary()
  const { secret, otpauth_uri: uri } = await enrol(app, u)
  t.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret')
  t.match(uri, /^otpauth:\/\/totp\/.*secret=[A-Z2-7]+.*algorithm=SHA1.*digits=6.*period=30/)
  const row = await app.accountsRepository.mfaState(u.id)
  t.notOk(row!.sealedSecret!.includes(secret), 'the secret is not stored in plain text')
  t.equal((await step1(app, u.username)).statusCode, 200, 'not required before confirmation')

  const bad = await app.inject({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: u.auth, payload: { code: codeAt(secret) === '000000' ? '111111' : '000000' } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().message, 'Invalid code')
  const ok = await app.inject({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: u.auth, payload: { code: codeAt(secret, -1) } })
  t.equal(ok.statusCode, 200)
  const recovery = ok.json().recovery_codes as string[]
  t.equal(recovery.length, 10)
  t.equal(new Set(recovery).size, 10)
  t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 200, 'the confirming session stays')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(other.access_token) })).statusCode, 401, 'every other session is revoked')
  t.equal((await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: u.auth, payload: { current_password: PASSWORD } })).statusCode, 409, 'already enabled: 409')

  const first = await step1(app, u.username)
  t.equal(first.statusCode, 202, 'login answers 202')
  t.same(Object.keys(first.json()).sort(), ['expires_in', 'mfa_required', 'mfa_token'])
  t.equal(first.json().expires_in, 300)
  t.notOk('access_token' in first.json(), 'no tokens yet')
  t.equal((await step1(app, u.username, 'wrong password')).statusCode, 401, 'a wrong password is still 401')

  const token = first.json().mfa_token as string
  const used = await step2(app, { mfa_token: token, code: codeAt(secret, -1) })
  t.equal(used.statusCode, 401, 'the confirming code (its step) is not accepted again')
  const done = await step2(app, { mfa_token: token, code: codeAt(secret) })
  t.equal(done.statusCode, 200)
  t.ok(done.json().access_token && done.json().refresh_token, 'a token pair')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(done.json().access_token) })).statusCode, 200)
  t.equal((await step2(app, { mfa_token: token, code: codeAt(secret, 1) })).statusCode, 401, 'the mfa_token is consumed')

  const again = (await step1(app, u.username)).json().mfa_token as string
  const replay = await step2(app, { mfa_token: again, code: codeAt(secret) })
  t.equal(replay.statusCode, 401, 'the same code again in its step: 401')
  t.equal(replay.json().message, 'Invalid code')
  t.equal((await step2(app, { mfa_token: again, code: codeAt(secret, 1) })).statusCode, 200, 'the next step\'s code works')

  const rc = (await step1(app, u.username)).json().mfa_token as string
  t.equal((await step2(app, { mfa_token: rc, recovery_code: recovery[0].toUpperCase() })).statusCode, 200, 'a recovery code works')
  const rc2 = (await step1(app, u.username)).json().mfa_token as string
  t.equal((await step2(app, { mfa_token: rc2, recovery_code: recovery[0] })).statusCode, 401, 'each recovery code once')
  t.equal((await step2(app, { mfa_token: rc2, recovery_code: recovery[1] })).statusCode, 200)

  t.equal((await step2(app, { mfa_token: rc2, code: '123456', recovery_code: recovery[2] })).statusCode, 400, 'code and recovery_code together: 400')
  t.equal((await step2(app, { mfa_token: 'not-a-token', code: codeAt(secret) })).statusCode, 401, 'unknown mfa_token: 401')

  t.test('the compat logins refuse a TOTP user with the contract\'s message', async (t) => {
    const a = await app.inject({ method: 'POST', url: '/login', payload: { username: u.username, password: PASSWORD } })
    t.equal(a.statusCode, 401)
    t.same(a.json(), { msg: 'Two-factor authentication required: use POST /auth/login' })
    const b = await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username: u.username, password: PASSWORD } })
    t.equal(b.statusCode, 401)
    t.same(b.json(), { error: 'Two-factor authentication required: use POST /auth/login' })
    const c = await app.inject({ method: 'POST', url: '/login', payload: { username: u.username, password: 'wrong one' } })
    t.same(c.json(), { msg: 'Bad username or password' }, 'a wrong password: the usual answer')
  })

  t.test('DELETE /users/me/mfa/totp needs the password and a code', async (t) => {
    const wrongCode = await app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', headers: u.auth, payload: { current_password: PASSWORD, code: 'zzzz-zzzz-zzzz-zzzz' } })
    t.equal(wrongCode.statusCode, 403)
    const wrongPassword = await app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', headers: u.auth, payload: { current_password: 'nope nope', code: recovery[2] } })
    t.equal(wrongPassword.statusCode, 403)
    const off = await app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', headers: u.auth, payload: { current_password: PASSWORD, code: recovery[2] } })
    t.equal(off.statusCode, 204)
    t.equal((await step1(app, u.username)).statusCode, 200, 'the password alone logs in again')
    const twice = await app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', headers: u.auth, payload: { current_password: PASSWORD, code: recovery[3] } })
    t.equal(twice.statusCode, 409)
  })
})

t.test('an mfa_token: 5 wrong codes at most, 5 minutes, and wrong codes count as failed logins', async (t) => {
  const app = await build(t)
  const u = await newUser(app)
  const { secret } = await withTotp(app, u)
  const token = (await step1(app, u.username)).json().mfa_token as string
  for (let i = 0; i < 5; i++) {
    t.equal((await step2(app, { mfa_token: token, code: codeAt(secret, 5) })).statusCode, 401, `wrong code ${i + 1}`)
  }
  t.equal((await step2(app, { mfa_token: token, code: codeAt(secret) })).statusCode, 401, 'spent after 5 wrong codes, even with the right one')

  const fresh = (await step1(app, u.username)).json().mfa_token as string
  const row = await app.accountsRepository.findChallenge(
    (await import('../../plugins/app/mfa')).hashOpaqueToken(fresh), Date.now() + 300_001, 5)
  t.equal(row, undefined, 'not live after 5 minutes')
  t.ok(await app.accountsRepository.findChallenge((await import('../../plugins/app/mfa')).hashOpaqueToken(fresh), Date.now() + 299_000, 5))

  t.test('wrong codes count against the account\'s failed-login limit', async (t) => {
    const limited = await build(t, { RATE_LIMITS: 'on' })
    const v = await newUser(limited)
    const { secret: s } = await withTotp(limited, v)
    // Step one's right password gives back what it counted; only the wrong codes remain.
    let wrong = 0
    let refused: number | undefined
    for (let round = 0; round < 20 && refused === undefined; round++) {
      const first = await step1(limited, v.username)
      if (first.statusCode !== 202) {
        refused = first.statusCode
        break
      }
      for (let i = 0; i < 5; i++) {
        const res = await step2(limited, { mfa_token: first.json().mfa_token, code: codeAt(s, 7) })
        if (res.statusCode !== 401) {
          refused = res.statusCode
          break
        }
        wrong++
      }
    }
    t.equal(refused, 429, 'wrong codes alone end in 429, even for the right password')
    t.equal(wrong, 10, 'after the failed-login limit of one account and address pair (10)')
  })
})

t.test('admin routes', async (t) => {
  const app = await build(t, { AUDIT_LOG: 'table' })
  const boss = await admin(app)
  const u = await newUser(app)
  const second = await login(app, u.username)

  t.equal((await app.inject({ url: `/admin/users/${boss.id}`, headers: u.auth })).statusCode, 403, 'no role: 403')
  t.equal((await app.inject({ url: `/admin/users/${boss.id}` })).statusCode, 401, 'no token: 401')
  const unknown = '00000000-0000-4000-8000-000000000000'
  for (const [method, path] of [['GET', ''], ['POST', '/disable'], ['POST', '/enable'], ['POST', '/logout'], ['DELETE', '/mfa'], ['POST', '/password-reset'], ['DELETE', '']] as const) {
    const res = await app.inject({ method, url: `/admin/users/${unknown}${path}`, headers: boss.auth })
    t.equal(res.statusCode, 404, `${method} ${path}: unknown id 404`)
    t.equal(res.json().message, 'User not found')
  }

  const one = await app.inject({ url: `/admin/users/${u.id}`, headers: boss.auth })
  t.equal(one.statusCode, 200)
  t.same(Object.keys(one.json()).sort(), ['created_at', 'disabled', 'id', 'last_login_at', 'mfa_enabled', 'roles', 'sessions', 'updated_at', 'username'])
  t.equal(one.json().sessions.length, 2)
  t.match(one.json().last_login_at, /^\d{4}-/)

  t.test('list: prefix search and pages', async (t) => {
    const prefix = uniqueName('Pfx')
    for (let i = 0; i < 5; i++) await register(app, `${prefix}_${i}`)
    const seen: string[] = []
    let after: string | undefined
    for (let page = 0; page < 5; page++) {
      const res = await app.inject({ url: `/admin/users?query=${prefix.toLowerCase()}&limit=2${after === undefined ? '' : `&after=${after}`}`, headers: boss.auth })
      t.equal(res.statusCode, 200)
      seen.push(...res.json().users.map((x: { username: string }) => x.username))
      after = res.json().next
      if (after === undefined) break
    }
    t.same(seen, [0, 1, 2, 3, 4].map((i) => `${prefix}_${i}`), 'every match once, in order, across pages')
    t.equal((await app.inject({ url: '/admin/users?limit=0', headers: boss.auth })).statusCode, 400)
    t.equal((await app.inject({ url: '/admin/users?limit=101', headers: boss.auth })).statusCode, 400)
    const wild = await app.inject({ url: '/admin/users?query=_', headers: boss.auth })
    t.equal(wild.json().users.length, 0, '_ is literal, not a wildcard')
  })

  t.test('disable revokes every session; the right password then gets 403, a wrong one 401', async (t) => {
    const res = await app.inject({ method: 'POST', url: `/admin/users/${u.id}/disable`, headers: boss.auth })
    t.equal(res.statusCode, 200)
    t.equal(res.json().disabled, true)
    t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401)
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: second.refresh_token } })).statusCode, 401)
    const right = await step1(app, u.username)
    t.equal(right.statusCode, 403)
    t.equal(right.json().message, 'Account disabled')
    t.equal((await step1(app, u.username, 'wrong password')).statusCode, 401)
    const compat = await app.inject({ method: 'POST', url: '/login', payload: { username: u.username, password: PASSWORD } })
    t.equal(compat.statusCode, 403)
    const enabled = await app.inject({ method: 'POST', url: `/admin/users/${u.id}/enable`, headers: boss.auth })
    t.equal(enabled.statusCode, 200)
    t.equal(enabled.json().disabled, false)
    t.equal((await step1(app, u.username)).statusCode, 200)
  })

  t.test('force logout; role taken away works at once; audit names the admin', async (t) => {
    const v = await newUser(app)
    t.equal((await app.inject({ method: 'POST', url: `/admin/users/${v.id}/logout`, headers: boss.auth })).statusCode, 204)
    t.equal((await app.inject({ url: '/users/me', headers: v.auth })).statusCode, 401)
    const second = await admin(app)
    t.equal((await app.inject({ url: `/admin/users/${v.id}`, headers: second.auth })).statusCode, 200)
    await app.accountsRepository.setRole(second.username, 'admin', false)
    t.equal((await app.inject({ url: `/admin/users/${v.id}`, headers: second.auth })).statusCode, 403, 'the next request after the role is taken')
    const v2 = await login(app, v.username)
    const events = await app.inject({ url: '/users/me/events', headers: bearer(v2.access_token) })
    const logout = events.json().events.find((e: { event: string }) => e.event === 'admin.user_logged_out')
    t.equal(logout.actor_id, boss.id, 'the acting admin')
    t.equal(logout.sessions_revoked, 1)
  })

  t.test('admin TOTP removal and delete', async (t) => {
    const v = await newUser(app)
    await withTotp(app, v)
    t.equal((await step1(app, v.username)).statusCode, 202)
    t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${v.id}/mfa`, headers: boss.auth })).statusCode, 204)
    t.equal((await step1(app, v.username)).statusCode, 200)
    t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${v.id}`, headers: boss.auth })).statusCode, 204)
    t.equal((await app.inject({ url: '/users/me', headers: v.auth })).statusCode, 401)
    t.equal((await step1(app, v.username)).statusCode, 401)
  })
})
