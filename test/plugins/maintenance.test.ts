import t from 'tap'
import { randomBytes } from 'node:crypto'
import { build, bearer, login, newUser } from '../helper'

t.test('pruning deletes only rows that can no longer matter', async (t) => {
  const app = await build(t, { ACCESS_TOKEN_TTL: '60', REFRESH_TOKEN_TTL: '3600' })
  const live = await newUser(app)
  const loggedOut = await newUser(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: loggedOut.auth })
  const single = await newUser(app)
  await app.sessions.renewAccessToken((await app.tokens.verifyAccessToken(single.tokens.access_token))!)

  // Now: nothing is prunable, the revocations are still needed.
  t.same(await app.pruneExpired(), { sessions: 0, revokedTokens: 0, revocationLog: 0, auditEvents: 0, mfaChallenges: 0, resetTokens: 0 })
  t.equal((await app.inject({ url: '/users/me', headers: loggedOut.auth })).statusCode, 401)

  // Two minutes on: the logged-out session and the single revoked token (60 s TTL) are past
  // use, and so are their two entries in the revocation log.
  const later = Date.now() + 120_000
  t.same(await app.pruneExpired(later), { sessions: 1, revokedTokens: 1, revocationLog: 2, auditEvents: 0, mfaChallenges: 0, resetTokens: 0 })
  t.equal((await app.sessions.listActive(live.id)).length, 1, 'live sessions stay')

  // Two hours on: every session is past its absolute expiry.
  await login(app, live.username)
  const result = await app.pruneExpired(Date.now() + 2 * 3600_000)
  t.equal(result.sessions, 3, 'live, its second login, and single\'s session')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: live.tokens.refresh_token } })).statusCode, 401, 'a pruned session cannot refresh')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(live.tokens.access_token) })).statusCode, 200, 'an unexpired access token of a live session is unaffected until its own exp')
})

t.test('pruning deletes expired mfa challenges and reset tokens, and keeps live ones', async (t) => {
  const app = await build(t)
  const repo = app.accountsRepository
  const now = Date.now()
  const hash = () => randomBytes(32).toString('hex')
  const [a, b, c] = [await newUser(app), await newUser(app), await newUser(app)]
  const version = async (id: string) => (await app.usersRepository.findById(id))!.credentialVersion
  // Expired a second ago, and live for five minutes more (a challenge, as POST /auth/login writes one).
  const challenge = async (userId: string, expiresAt: number) => {
    const tokenHash = hash()
    await repo.createChallenge({ tokenHash, userId, credentialVersion: await version(userId), now: now - 300_000, expiresAt })
    return tokenHash
  }
  const expiredChallenges = [await challenge(a.id, now - 1000), await challenge(b.id, now - 1000)]
  const liveChallenge = await challenge(a.id, now + 300_000)
  // One reset token per user (a new one replaces the user's earlier unused ones).
  const reset = async (userId: string, expiresAt: number) => {
    const tokenHash = hash()
    t.ok(await repo.createResetToken({ tokenHash, userId, now: now - 900_000, expiresAt }))
    return tokenHash
  }
  const expiredResets = [await reset(a.id, now - 1000), await reset(b.id, now - 1000)]
  const liveReset = await reset(c.id, now + 900_000)

  // Rows exist whatever their expiry: look them up as of long ago.
  const challengeRow = async (h: string) => await repo.findChallenge(h, 0, 1000) !== undefined
  const resetRow = async (h: string) => await repo.resetTokenLive(h, 0)
  for (const h of expiredChallenges) t.ok(await challengeRow(h), 'expired challenge written')
  for (const h of expiredResets) t.ok(await resetRow(h), 'expired reset token written')

  const pruned = await app.pruneExpired(now)
  t.equal(pruned.mfaChallenges, 2)
  t.equal(pruned.resetTokens, 2)
  for (const h of expiredChallenges) t.notOk(await challengeRow(h), 'expired challenge deleted')
  for (const h of expiredResets) t.notOk(await resetRow(h), 'expired reset token deleted')
  t.ok(await repo.findChallenge(liveChallenge, now, 5), 'the live challenge is kept, still usable')
  t.ok(await repo.resetTokenLive(liveReset, now), 'the live reset token is kept, still usable')
  t.same(await app.pruneExpired(now), { sessions: 0, revokedTokens: 0, revocationLog: 0, auditEvents: 0, mfaChallenges: 0, resetTokens: 0 }, 'nothing left to prune')

  // Once past their expiry, the live ones go too.
  const later = await app.pruneExpired(now + 900_001)
  t.equal(later.mfaChallenges, 1)
  t.equal(later.resetTokens, 1)
  t.notOk(await challengeRow(liveChallenge))
  t.notOk(await resetRow(liveReset))
})
