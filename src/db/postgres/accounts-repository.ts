import { and, eq, gt, isNull, lt, or, sql } from 'drizzle-orm'
import type { AccountsRepository, MfaProof } from '../repositories'
import { usernameKey } from '../repositories'
import { likePrefix, toAccount, toRoles } from '../dialect-rules'
import type { PgOrm, PostgresDb } from './client'
import { revokeSessionsOfUser } from './revocation-log'
import { mfaChallenges, mfaRecoveryCodes, passwordResetTokens, users } from './schema'

/**
 * Accounts on PostgreSQL, under READ COMMITTED. Each "once" is one conditional UPDATE: a
 * racing UPDATE of the same row waits for the first to commit, then re-checks its WHERE on
 * the new row and changes nothing. Lock order (no deadlocks): an mfa challenge before its
 * user's row; a reset token before its user's row; the user's row before its sessions.
 */
export function postgresAccountsRepository (db: PostgresDb): AccountsRepository {
  const { orm } = db
  const columns = {
    id: users.id,
    username: users.username,
    usernameKey: users.usernameKey,
    createdAt: users.createdAt,
    updatedAt: users.updatedAt,
    roles: users.roles,
    disabledAt: users.disabledAt,
    mfaEnabled: users.mfaEnabled,
    lastLoginAt: users.lastLoginAt
  }
  const find = async (id: string) => {
    const [row] = await orm.select(columns).from(users).where(eq(users.id, id))
    return row === undefined ? undefined : toAccount(row)
  }
  const liveChallenge = (tokenHash: string, now: number, maxFailures: number) => and(
    eq(mfaChallenges.tokenHash, tokenHash), isNull(mfaChallenges.consumedAt),
    gt(mfaChallenges.expiresAt, now), lt(mfaChallenges.failures, maxFailures))

  const claim = async (tx: PgOrm, userId: string, proof: MfaProof, now: number) => {
    if ('step' in proof) {
      const rows = await tx.update(users).set({ mfaLastStep: proof.step })
        .where(and(eq(users.id, userId), eq(users.mfaEnabled, true),
          or(isNull(users.mfaLastStep), lt(users.mfaLastStep, proof.step))))
        .returning({ id: users.id })
      return rows.length > 0
    }
    const rows = await tx.update(mfaRecoveryCodes).set({ usedAt: now })
      .where(and(eq(mfaRecoveryCodes.codeHash, proof.recoveryCodeHash), eq(mfaRecoveryCodes.userId, userId),
        isNull(mfaRecoveryCodes.usedAt)))
      .returning({ codeHash: mfaRecoveryCodes.codeHash })
    return rows.length > 0
  }

  return {
    find,
    async search (prefix, limit, afterKey) {
      const scope = [sql`${users.usernameKey} LIKE ${likePrefix(prefix)} ESCAPE '\\'`]
      // byte order (COLLATE "C"), as SQLite's: the cursor and the order agree in both dialects
      if (afterKey !== undefined) scope.push(sql`${users.usernameKey} COLLATE "C" > ${afterKey}`)
      const rows = await orm.select(columns).from(users).where(and(...scope))
        .orderBy(sql`${users.usernameKey} COLLATE "C"`).limit(limit)
      return rows.map(toAccount)
    },
    async setRole (username, role, granted) {
      return await db.transaction(async (tx) => {
        const [row] = await tx.select({ roles: users.roles }).from(users)
          .where(eq(users.usernameKey, usernameKey(username))).for('update')
        if (row === undefined) return false
        const roles = new Set(toRoles(row.roles))
        if (granted) roles.add(role)
        else roles.delete(role)
        await tx.update(users).set({ roles: [...roles].sort().join(' ') }).where(eq(users.usernameKey,
          usernameKey(username)))
        return true
      })
    },
    async setDisabled (id, disabled, now) {
      // An UPDATE of the row: it waits for a login holding it FOR SHARE, and such a login
      // that comes after finds the account disabled (sessions-repository.ts, create).
      const since = sql`coalesce(${users.disabledAt}, ${now})` as unknown as number
      const set = disabled ? { disabledAt: since } : { disabledAt: null }
      const [row] = await orm.update(users).set({ ...set, updatedAt: now }).where(eq(users.id, id)).returning(columns)
      return row === undefined ? undefined : toAccount(row)
    },
    async recordLogin ({ id, lastLoginAt, rehash }) {
      if (rehash === undefined) {
        if (lastLoginAt !== undefined) await orm.update(users).set({ lastLoginAt }).where(eq(users.id, id))
        return
      }
      // One statement: the new hash only if the password is still the one checked (a racing
      // change bumped the version and wins); the version itself stays, so nothing is revoked
      // and logins in flight still get their sessions.
      const stillCurrent =
        sql`${users.credentialVersion} = ${rehash.expectedVersion} AND ${users.passwordHash} = ${rehash.from}`
      await orm.update(users).set({
        ...(lastLoginAt === undefined ? {} : { lastLoginAt }),
        passwordHash: sql`CASE WHEN ${stillCurrent} THEN ${rehash.to} ELSE ${users.passwordHash} END`
      }).where(eq(users.id, id))
    },

    async mfaState (userId) {
      const [row] = await orm.select({
        sealedSecret: users.mfaSecret,
        enabled: users.mfaEnabled,
        lastStep: users.mfaLastStep
      })
        .from(users).where(eq(users.id, userId))
      return row
    },
    async setPendingMfa (userId, sealedSecret) {
      return await db.transaction(async (tx) => {
        const [row] = await tx.select({ enabled: users.mfaEnabled }).from(users).where(eq(users.id,
          userId)).for('update')
        if (row === undefined) return 'gone' as const
        if (row.enabled) return 'enabled' as const
        await tx.update(users).set({ mfaSecret: sealedSecret, mfaLastStep: null }).where(eq(users.id, userId))
        return 'ok' as const
      })
    },
    async confirmMfa (c) {
      return await db.transaction(async (tx) => {
        // The user's row, exclusively (the UPDATE): logins wait for the commit, then find the
        // version bumped; the sessions after it, as every revoke-all does.
        const turnedOn = await tx.update(users).set({
          mfaEnabled: true,
          mfaLastStep: c.step,
          credentialVersion: sql`${users.credentialVersion} + 1` as unknown as number,
          updatedAt: c.now
        }).where(and(eq(users.id, c.userId), eq(users.mfaEnabled, false), sql`${users.mfaSecret} IS NOT NULL`))
          .returning({ id: users.id })
        if (turnedOn.length === 0) return 'nothing' as const
        await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, c.userId))
        await tx.insert(mfaRecoveryCodes)
          .values(c.recoveryCodeHashes.map((codeHash) => ({ codeHash, userId: c.userId, createdAt: c.now })))
        return await revokeSessionsOfUser(tx, c.userId, 'mfa_enabled', c.now, c.sessionId)
      })
    },
    async disableMfa (userId) {
      return await db.transaction(async (tx) => {
        const changed = await tx.update(users).set({ mfaEnabled: false, mfaSecret: null, mfaLastStep: null })
          .where(and(eq(users.id, userId), or(eq(users.mfaEnabled, true), sql`${users.mfaSecret} IS NOT NULL`)))
          .returning({ id: users.id })
        await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId))
        return changed.length > 0
      })
    },
    async useMfaProof (userId, proof, now) {
      return await claim(orm, userId, proof, now)
    },

    async createChallenge (c) {
      await orm.insert(mfaChallenges).values({
        tokenHash: c.tokenHash,
        userId: c.userId,
        credentialVersion: c.credentialVersion,
        createdAt: c.now,
        expiresAt: c.expiresAt
      })
    },
    async findChallenge (tokenHash, now, maxFailures) {
      const [row] = await orm.select({
        userId: mfaChallenges.userId,
        credentialVersion: mfaChallenges.credentialVersion,
        failures: mfaChallenges.failures
      }).from(mfaChallenges).where(liveChallenge(tokenHash, now, maxFailures))
      return row
    },
    async failChallenge (tokenHash) {
      await orm.update(mfaChallenges).set({ failures: sql`${mfaChallenges.failures} + 1` as unknown as number })
        .where(eq(mfaChallenges.tokenHash, tokenHash))
    },
    async completeChallenge (tokenHash, proof, now, maxFailures) {
      return await db.transaction(async (tx) => {
        // The challenge's row first, locked to the commit: two uses of one mfa_token queue
        // here, and the second finds it consumed. Nothing is written unless both claims hold.
        const [challenge] = await tx.select({ userId: mfaChallenges.userId }).from(mfaChallenges)
          .where(liveChallenge(tokenHash, now, maxFailures)).for('update')
        if (challenge === undefined) return 'invalid' as const
        if (!await claim(tx, challenge.userId, proof, now)) return 'used' as const
        await tx.update(mfaChallenges).set({ consumedAt: now }).where(eq(mfaChallenges.tokenHash, tokenHash))
        return 'ok' as const
      })
    },

    async createResetToken (r) {
      return await db.transaction(async (tx) => {
        const [user] = await tx.select({ id: users.id }).from(users).where(eq(users.id, r.userId)).for('share')
        if (user === undefined) return false
        await tx.delete(passwordResetTokens)
          .where(and(eq(passwordResetTokens.userId, r.userId), isNull(passwordResetTokens.usedAt)))
        await tx.insert(passwordResetTokens)
          .values({ tokenHash: r.tokenHash, userId: r.userId, createdAt: r.now, expiresAt: r.expiresAt })
        return true
      })
    },
    async resetTokenLive (tokenHash, now) {
      const [row] = await orm.select({ userId: passwordResetTokens.userId }).from(passwordResetTokens)
        .where(and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.usedAt),
          gt(passwordResetTokens.expiresAt, now)))
      return row !== undefined
    },
    async resetPassword (tokenHash, passwordHash, now) {
      return await db.transaction(async (tx) => {
        // The token first (of two uses at once, the second waits here, then finds it used),
        // then the user's row, then its sessions.
        const [token] = await tx.update(passwordResetTokens).set({ usedAt: now })
          .where(and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.usedAt),
            gt(passwordResetTokens.expiresAt, now)))
          .returning({ userId: passwordResetTokens.userId })
        if (token === undefined) return null
        const changed = await tx.update(users).set({
          passwordHash, credentialVersion: sql`${users.credentialVersion} + 1` as unknown as number, updatedAt: now
        }).where(eq(users.id, token.userId)).returning({ id: users.id })
        if (changed.length === 0) return null
        return { userId: token.userId, revoked: await revokeSessionsOfUser(tx, token.userId, 'password_reset', now) }
      })
    },

    async prune (now) {
      const challenges = await orm.delete(mfaChallenges).where(lt(mfaChallenges.expiresAt,
        now)).returning({ h: mfaChallenges.tokenHash })
      const resets = await orm.delete(passwordResetTokens).where(lt(passwordResetTokens.expiresAt, now))
        .returning({ h: passwordResetTokens.tokenHash })
      return { mfaChallenges: challenges.length, resetTokens: resets.length }
    }
  }
}
