import t from 'tap'
import { build, newUser, PASSWORD, type App } from '../helper'
import { hashOpaqueToken } from '../../plugins/app/mfa'

// docs/api.md, "Accounts": admin-issued password resets and hash upgrades, over HTTP.

async function admin (app: App) {
  const u = await newUser(app)
  t.ok(await app.accountsRepository.setRole(u.username, 'admin', true))
  return u
}

const step1 = async (app: App, username: string, password = PASSWORD) =>
  await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })

t.test('password reset', async (t) => {
  const app = await build(t)
  const boss = await admin(app)
  const u = await newUser(app)
  const issued = await app.inject({ method: 'POST', url: `/admin/users/${u.id}/password-reset`, headers: boss.auth })
  t.equal(issued.statusCode, 200)
  t.equal(issued.json().expires_in, 900)
  const token = issued.json().reset_token as string
  const reset = (payload: Record<string, string>) => app.inject({ method: 'POST', url: '/auth/password/reset', payload })
  t.equal((await reset({ reset_token: token, new_password: 'short' })).statusCode, 400, 'password rules apply')
  const common = await reset({ reset_token: token, new_password: 'password123' })
  t.equal(common.statusCode, 400)
  t.equal((await reset({ reset_token: 'nope', new_password: 'a brand new passphrase' })).json().message, 'Invalid or expired reset token')
  t.equal((await step1(app, u.username)).statusCode, 200, 'nothing changed yet')
  t.equal((await reset({ reset_token: token, new_password: 'a brand new passphrase' })).statusCode, 204)
  t.equal((await app.inject({ url: '/users/me', headers: u.auth })).statusCode, 401, 'every session revoked')
  t.equal((await step1(app, u.username)).statusCode, 401, 'the old password no longer works')
  t.equal((await step1(app, u.username, 'a brand new passphrase')).statusCode, 200)
  const again = await reset({ reset_token: token, new_password: 'another new passphrase' })
  t.equal(again.statusCode, 400, 'single use')
  t.equal(again.json().message, 'Invalid or expired reset token')
  t.notOk(await app.accountsRepository.resetTokenLive(hashOpaqueToken(token), Date.now()))
  const second = (await app.inject({ method: 'POST', url: `/admin/users/${u.id}/password-reset`, headers: boss.auth })).json().reset_token
  const hash = hashOpaqueToken(second)
  t.ok(await app.accountsRepository.resetTokenLive(hash, Date.now() + 899_000))
  t.notOk(await app.accountsRepository.resetTokenLive(hash, Date.now() + 900_001), 'expired after 900 s')
})

t.test('hash upgrade: a login at a higher BCRYPT_COST rehashes, revoking nothing', async (t) => {
  const { DIALECT, fileDatabase } = await import('../helper')
  const url = DIALECT === 'postgres' ? await fileDatabase() : `file:${(await import('node:os')).tmpdir()}/acct-${process.pid}-${Date.now()}.db`
  const low = await build(t, { DATABASE_URL: url, BCRYPT_COST: '10' })
  const u = await newUser(low)
  const cost = async (app: App) => Number((await app.usersRepository.findById(u.id))!.passwordHash.split('$')[2])
  t.equal(await cost(low), 10)
  await low.close()
  const high = await build(t, { DATABASE_URL: url, BCRYPT_COST: '11' })
  t.equal((await step1(high, u.username, 'wrong password')).statusCode, 401)
  t.equal(await cost(high), 10, 'a failed login changes nothing')
  t.equal((await step1(high, u.username)).statusCode, 200)
  t.equal(await cost(high), 11, 'rehashed at the new cost')
  t.equal((await high.inject({ url: '/users/me', headers: u.auth })).statusCode, 200, 'the old session lives on')
  t.equal((await step1(high, u.username)).statusCode, 200, 'the same password still works')

  t.test('a password change racing it wins', async (t) => {
    const user = (await high.usersRepository.findById(u.id))!
    // the rehash of a login that checked the old password lands after a change: it is dropped
    const changed = await high.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { current_password: PASSWORD, password: 'the changed passphrase' } })
    t.equal(changed.statusCode, 200)
    await high.accountsRepository.recordLogin({ id: u.id, rehash: { from: user.passwordHash, to: user.passwordHash.replace(/.$/, 'x'), expectedVersion: user.credentialVersion } })
    t.equal((await step1(high, u.username, 'the changed passphrase')).statusCode, 200, 'the change stands')
  })
})
