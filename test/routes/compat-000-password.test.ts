import t from 'tap'
import { bearer, build, PASSWORD, uniqueName, type App } from '../helper'

// F2. Seed 000's PUT /user changed a password with nothing but a live token, so a stolen
// access token could take the account over. Here, as on PATCH /users/me, a password change
// needs current_password: 400 without it, 403 when wrong, and nothing changes in either case.

const NEW_PASSWORD = 'an entirely new passphrase'

async function demoUser (app: App) {
  const user = { username: uniqueName('demo'), password: PASSWORD }
  const created = await app.inject({ method: 'POST', url: '/user', payload: user })
  if (created.statusCode !== 201) throw new Error(`create failed: ${created.statusCode}`)
  const auth = await app.inject({ method: 'POST', url: '/authenticate_user', payload: user })
  return { ...user, token: auth.json().token as string }
}

const authenticates = async (app: App, username: string, password: string) =>
  (await app.inject({ method: 'POST', url: '/authenticate_user', payload: { username, password } })).statusCode

t.test('F2: compat PUT /user needs the current password to change the password', async (t) => {
  const app = await build(t)

  for (const [name, extra, status] of [
    ['without current_password', {}, 400],
    ['with a wrong current_password', { current_password: 'not the password at all' }, 403]
  ] as const) {
    t.test(name, async (t) => {
      const user = await demoUser(app)
      const renamed = uniqueName('renamed')
      const res = await app.inject({ method: 'PUT', url: '/user', headers: bearer(user.token), payload: { username: renamed, password: NEW_PASSWORD, ...extra } })
      t.equal(res.statusCode, status, `answered ${status}`)
      t.same(Object.keys(res.json()), ['message'], 'the seed\'s error shape')
      t.type(res.json().message, 'string')
      t.equal(await authenticates(app, user.username, PASSWORD), 200, 'the old username and password still log in')
      t.equal(await authenticates(app, user.username, NEW_PASSWORD), 401, 'the new password does not')
      t.same([await authenticates(app, renamed, PASSWORD), await authenticates(app, renamed, NEW_PASSWORD)], [401, 401], 'nor the new username')
      const me = await app.inject({ url: '/users/me', headers: bearer(user.token) })
      t.equal(me.statusCode, 200, 'the token was not used up')
      t.equal(me.json().username, user.username)
    })
  }

  t.test('with the right current_password', async (t) => {
    const user = await demoUser(app)
    const res = await app.inject({ method: 'PUT', url: '/user', headers: bearer(user.token), payload: { password: NEW_PASSWORD, current_password: PASSWORD } })
    t.equal(res.statusCode, 200)
    t.equal(res.json().message, 'User updated successfully')
    t.equal((await app.inject({ url: '/users/me', headers: bearer(res.json().token) })).statusCode, 200, 'the renewed token works')
    t.equal((await app.inject({ url: '/users/me', headers: bearer(user.token) })).statusCode, 401, 'the one sent was renewed away')
    t.equal(await authenticates(app, user.username, NEW_PASSWORD), 200, 'the new password logs in')
    t.equal(await authenticates(app, user.username, PASSWORD), 401, 'the old one does not')
  })
})
