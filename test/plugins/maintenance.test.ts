import t from 'tap'
import { build, bearer, login, newUser } from '../helper'

t.test('pruning deletes only rows that can no longer matter', async (t) => {
  const app = await build(t, { ACCESS_TOKEN_TTL: '60', REFRESH_TOKEN_TTL: '3600' })
  const live = await newUser(app)
  const loggedOut = await newUser(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: loggedOut.auth })
  const single = await newUser(app)
  await app.sessions.revokeAccessToken((await app.tokens.verifyAccessToken(single.tokens.access_token))!)

  // Now: nothing is prunable, the revocations are still needed.
  t.same(await app.pruneExpired(), { sessions: 0, revokedTokens: 0, revocationLog: 0, auditEvents: 0 })
  t.equal((await app.inject({ url: '/users/me', headers: loggedOut.auth })).statusCode, 401)

  // Two minutes on: the logged-out session and the single revoked token (60 s TTL) are past
  // use, and so are their two entries in the revocation log.
  const later = Date.now() + 120_000
  t.same(await app.pruneExpired(later), { sessions: 1, revokedTokens: 1, revocationLog: 2, auditEvents: 0 })
  t.equal((await app.sessions.listActive(live.id)).length, 1, 'live sessions stay')

  // Two hours on: every session is past its absolute expiry.
  await login(app, live.username)
  const result = await app.pruneExpired(Date.now() + 2 * 3600_000)
  t.equal(result.sessions, 3, 'live, its second login, and single\'s session')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: live.tokens.refresh_token } })).statusCode, 401, 'a pruned session cannot refresh')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(live.tokens.access_token) })).statusCode, 200, 'an unexpired access token of a live session is unaffected until its own exp')
})
