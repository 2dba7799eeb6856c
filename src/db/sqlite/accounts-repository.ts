import { and, asc, eq, gt, isNull, lt, or, sql } from 'drizzle-orm'
import type { AccountsRepository } from '../repositories'
import { usernameKey } from '../repositories'
import { likePrefix, toAccount, toRoles } from '../dialect-rules'
import type { SqliteDb } from './client'
import { revokeSessionsOfUser } from './revocation-log'
import { mfaChallenges, mfaRecoveryCodes, passwordResetTokens, users } from './schema'

/** Accounts on SQLite: every write transaction is BEGIN IMMEDIATE (one writer at a time). */
export function sqliteAccountsRepository ({ orm: db }: SqliteDb): AccountsRepository {
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
  const find = (id: string) => {
    const row = db.select(columns).from(users).where(eq(users.id, id)).get()
    return row === undefined ? undefined : toAccount(row)
  }
  const liveChallenge = (tokenHash: string, now: number, maxFailures: number) => and(
    eq(mfaChallenges.tokenHash, tokenHash), isNull(mfaChallenges.consumedAt),
    gt(mfaChallenges.expiresAt, now), lt(mfaChallenges.failures, maxFailures))

  // Inside the caller's transaction: one conditional UPDATE, so a step or a code counts once.
  type Tx = Parameters<Parameters<typeof db.transaction>[0]>[0]
  const claim = (tx: Tx | typeof db, userId: string, proof: Parameters<AccountsRepository['useMfaProof']>[1],
    now: number) => {
    if ('step' in proof) {
      return tx.update(users).set({ mfaLastStep: proof.step })
        .where(and(eq(users.id, userId), eq(users.mfaEnabled, true),
          or(isNull(users.mfaLastStep), lt(users.mfaLastStep, proof.step)))).run().changes > 0
    }
    return tx.update(mfaRecoveryCodes).set({ usedAt: now })
      .where(and(eq(mfaRecoveryCodes.codeHash, proof.recoveryCodeHash), eq(mfaRecoveryCodes.userId, userId),
        isNull(mfaRecoveryCodes.usedAt))).run().changes > 0
  }

  return {
    async find (id) {
      return find(id)
    },
    async search (prefix, limit, afterKey) {
      const scope = [sql`${users.usernameKey} LIKE ${likePrefix(prefix)} ESCAPE '\\'`]
      if (afterKey !== undefined) scope.push(gt(users.usernameKey, afterKey))
      return db.select(columns).from(users).where(and(...scope)).orderBy(asc(users.usernameKey)).limit(limit)
        .all().map(toAccount)
    },
    async setRole (username, role, granted) {
      return db.transaction((tx) => {
        const row = tx.select({ roles: users.roles }).from(users).where(eq(users.usernameKey,
          usernameKey(username))).get()
        if (row === undefined) return false
        const roles = new Set(toRoles(row.roles))
        if (granted) roles.add(role)
        else roles.delete(role)
        tx.update(users).set({ roles: [...roles].sort().join(' ') })
          .where(eq(users.usernameKey, usernameKey(username))).run()
        return true
      }, { behavior: 'immediate' })
    },
    async setDisabled (id, disabled, now) {
      // The first disable's time is kept; enabling clears it.
      const since = sql`coalesce(${users.disabledAt}, ${now})` as unknown as number
      const set = disabled ? { disabledAt: since } : { disabledAt: null }
      const changed = db.update(users).set({ ...set, updatedAt: now }).where(eq(users.id, id)).run().changes > 0
      return changed ? find(id) : undefined
    },
    async recordLogin ({ id, lastLoginAt, rehash }) {
      db.transaction((tx) => {
        if (lastLoginAt !== undefined) tx.update(users).set({ lastLoginAt }).where(eq(users.id, id)).run()
        if (rehash === undefined) return
        // the new hash only if the password is still the one checked: a racing change wins;
        // the version stays, so nothing is revoked and logins in flight still get sessions
        tx.update(users).set({ passwordHash: rehash.to })
          .where(and(eq(users.id, id), eq(users.credentialVersion, rehash.expectedVersion),
            eq(users.passwordHash, rehash.from))).run()
      }, { behavior: 'immediate' })
    },

    async mfaState (userId) {
      const row = db.select({ sealedSecret: users.mfaSecret, enabled: users.mfaEnabled, lastStep: users.mfaLastStep })
        .from(users).where(eq(users.id, userId)).get()
      return row
    },
    async setPendingMfa (userId, sealedSecret) {
      return db.transaction((tx) => {
        const row = tx.select({ enabled: users.mfaEnabled }).from(users).where(eq(users.id, userId)).get()
        if (row === undefined) return 'gone' as const
        if (row.enabled) return 'enabled' as const
        tx.update(users).set({ mfaSecret: sealedSecret, mfaLastStep: null }).where(eq(users.id, userId)).run()
        return 'ok' as const
      }, { behavior: 'immediate' })
    },
    async confirmMfa (c) {
      return db.transaction((tx) => {
        const turnedOn = tx.update(users).set({
          mfaEnabled: true,
          mfaLastStep: c.step,
          credentialVersion: sql`${users.credentialVersion} + 1` as unknown as number,
          updatedAt: c.now
        }).where(and(eq(users.id, c.userId), eq(users.mfaEnabled, false), sql`${users.mfaSecret} IS NOT NULL`))
          .run().changes > 0
        if (!turnedOn) return 'nothing' as const
        tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, c.userId)).run()
        tx.insert(mfaRecoveryCodes)
          .values(c.recoveryCodeHashes.map((codeHash) => ({ codeHash, userId: c.userId, createdAt: c.now }))).run()
        return revokeSessionsOfUser(tx, c.userId, 'mfa_enabled', c.now, c.sessionId)
      }, { behavior: 'immediate' })
    },
    async disableMfa (userId) {
      return db.transaction((tx) => {
        const changed = tx.update(users).set({ mfaEnabled: false, mfaSecret: null, mfaLastStep: null })
          .where(and(eq(users.id, userId), or(eq(users.mfaEnabled, true), sql`${users.mfaSecret} IS NOT NULL`)))
          .run().changes > 0
        tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId)).run()
        return changed
      }, { behavior: 'immediate' })
    },
    async useMfaProof (userId, proof, now) {
      return db.transaction((tx) => claim(tx, userId, proof, now), { behavior: 'immediate' })
    },

    async createChallenge (c) {
      db.insert(mfaChallenges).values({
        tokenHash: c.tokenHash,
        userId: c.userId,
        credentialVersion: c.credentialVersion,
        createdAt: c.now,
        expiresAt: c.expiresAt
      }).run()
    },
    async findChallenge (tokenHash, now, maxFailures) {
      return db.select({
        userId: mfaChallenges.userId,
        credentialVersion: mfaChallenges.credentialVersion,
        failures: mfaChallenges.failures
      }).from(mfaChallenges).where(liveChallenge(tokenHash, now, maxFailures)).get()
    },
    async failChallenge (tokenHash) {
      db.update(mfaChallenges).set({ failures: sql`${mfaChallenges.failures} + 1` as unknown as number })
        .where(eq(mfaChallenges.tokenHash, tokenHash)).run()
    },
    async completeChallenge (tokenHash, proof, now, maxFailures) {
      // BEGIN IMMEDIATE: nothing else writes between the checks and the writes.
      return db.transaction((tx) => {
        const challenge = tx.select({ userId: mfaChallenges.userId }).from(mfaChallenges)
          .where(liveChallenge(tokenHash, now, maxFailures)).get()
        if (challenge === undefined) return 'invalid' as const
        if (!claim(tx, challenge.userId, proof, now)) return 'used' as const
        tx.update(mfaChallenges).set({ consumedAt: now }).where(eq(mfaChallenges.tokenHash, tokenHash)).run()
        return 'ok' as const
      }, { behavior: 'immediate' })
    },

    async createResetToken (r) {
      return db.transaction((tx) => {
        if (tx.select({ id: users.id }).from(users).where(eq(users.id, r.userId)).get() === undefined) return false
        tx.delete(passwordResetTokens)
          .where(and(eq(passwordResetTokens.userId, r.userId), isNull(passwordResetTokens.usedAt))).run()
        tx.insert(passwordResetTokens)
          .values({ tokenHash: r.tokenHash, userId: r.userId, createdAt: r.now, expiresAt: r.expiresAt }).run()
        return true
      }, { behavior: 'immediate' })
    },
    async resetTokenLive (tokenHash, now) {
      return db.select({ userId: passwordResetTokens.userId }).from(passwordResetTokens)
        .where(and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.usedAt),
          gt(passwordResetTokens.expiresAt, now))).get() !== undefined
    },
    async resetPassword (tokenHash, passwordHash, now) {
      return db.transaction((tx) => {
        const [token] = tx.update(passwordResetTokens).set({ usedAt: now })
          .where(and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.usedAt),
            gt(passwordResetTokens.expiresAt, now)))
          .returning({ userId: passwordResetTokens.userId }).all()
        if (token === undefined) return null
        const changed = tx.update(users).set({
          passwordHash, credentialVersion: sql`${users.credentialVersion} + 1` as unknown as number, updatedAt: now
        }).where(eq(users.id, token.userId)).run().changes > 0
        if (!changed) return null
        return { userId: token.userId, revoked: revokeSessionsOfUser(tx, token.userId, 'password_reset', now) }
      }, { behavior: 'immediate' })
    },

    async prune (now) {
      const challenges = db.delete(mfaChallenges).where(lt(mfaChallenges.expiresAt, now)).run().changes
      const resets = db.delete(passwordResetTokens).where(lt(passwordResetTokens.expiresAt, now)).run().changes
      return { mfaChallenges: challenges, resetTokens: resets }
    }
  }
}
