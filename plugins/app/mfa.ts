import { createHash, randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { Secret } from 'otpauth'
import type { RequestContext } from '../../src/request-context'
import type { MfaProof } from '../../src/db/repositories'
import { secretBox, type SecretBox } from '../../src/security/secret-box'
import { matchTotp, newTotpSecret, otpauthUri } from '../../src/security/totp'
import {
  InvalidCodeError, MfaEnrolmentOffError, MfaStateError, MfaUnavailableError, UserGoneError, WrongCurrentPasswordError
} from '../../src/errors'

/** docs/api.md, "Two-factor": an mfa_token lives 5 minutes and survives 5 wrong codes. */
export const MFA_TOKEN_TTL = 300
export const MFA_MAX_WRONG_CODES = 5
export const RECOVERY_CODE_COUNT = 10

export const MFA_ALREADY_ENABLED = 'Two-factor authentication is already enabled'
export const MFA_NOTHING_TO_CONFIRM = 'Nothing to confirm: start an enrolment with POST /users/me/mfa/totp first'
export const MFA_NOT_ENABLED = 'Two-factor authentication is not enabled'

/** A second factor as a client sends it: a TOTP code or a recovery code. */
export interface MfaInput { code?: string, recoveryCode?: string }

/** Recovery codes: 80 random bits, shown as xxxx-xxxx-xxxx-xxxx (base32), compared without dashes or case. */
export function newRecoveryCode (): string {
  const base32 = new Secret({ buffer: new Uint8Array(randomBytes(10)).buffer }).base32.toLowerCase()
  return base32.match(/.{4}/g)!.join('-')
}
/** SHA-256 is enough for 80 random bits (as for refresh tokens): no slow hash needed. */
export const hashRecoveryCode = (code: string) =>
  createHash('sha256').update(code.replace(/[\s-]/g, '').toLowerCase(), 'utf8').digest('base64url')
export const hashOpaqueToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('base64url')

export interface Mfa {
  /** A new pending enrolment: 403 wrong password, 409 already on, 403 enrolment switched off. */
  enrol (userId: string, currentPassword: string, ctx: RequestContext): Promise<{ secret: string, otpauthUri: string }>
  /** TOTP on, with a code of the pending secret: the recovery codes (shown once). 400 Invalid code,
    409 nothing pending. */
  confirm (userId: string, sessionId: string, code: string, ctx: RequestContext): Promise<string[]>
  /** TOTP off, with the password and a TOTP or recovery code (each 403 when wrong); 409 when it was not on. */
  disable (userId: string, currentPassword: string, code: string, ctx: RequestContext): Promise<void>
  /** Which proof `input` is for this user, or null when it is none (wrong, malformed, or no TOTP). */
  proofOf (userId: string, input: MfaInput, now: number): Promise<MfaProof | null>
}

declare module 'fastify' {
  interface FastifyInstance {
    mfa: Mfa
  }
}

export default fp(async function mfa (fastify) {
  const { accountsRepository: repo, usersRepository: users, passwords, audit, config } = fastify
  const { key, ephemeralKey, enrolment, issuer } = config.mfa
  if (ephemeralKey) {
    fastify.log.warn('MFA_ENCRYPTION_KEY is not set: a random key was made; TOTP enrolments will not survive a restart')
  }
  const box: SecretBox | undefined = key === undefined ? undefined : secretBox(key)
  const open = (sealed: string, userId: string): string => {
    if (box === undefined) throw new MfaUnavailableError()
    try {
      return box.open(sealed, userId)
    } catch {
      throw new MfaUnavailableError()
    }
  }

  const checkPassword = async (userId: string, password: string, ctx: RequestContext) => {
    const user = await users.findById(userId)
    if (user === undefined) throw new UserGoneError()
    if (!await passwords.verify(password, user.passwordHash, ctx.signal)) {
      await audit.record({ event: 'mfa.denied', userId, reason: 'wrong_current_password' }, ctx)
      throw new WrongCurrentPasswordError()
    }
    return user
  }

  const service: Mfa = {
    async enrol (userId, currentPassword, ctx) {
      if (!enrolment || box === undefined) throw new MfaEnrolmentOffError()
      const user = await checkPassword(userId, currentPassword, ctx)
      if (user.mfaEnabled) throw new MfaStateError(MFA_ALREADY_ENABLED)
      const secret = newTotpSecret()
      const stored = await repo.setPendingMfa(userId, box.seal(secret, userId))
      if (stored === 'gone') throw new UserGoneError()
      if (stored === 'enabled') throw new MfaStateError(MFA_ALREADY_ENABLED)
      await audit.record({ event: 'mfa.enrolment_started', userId }, ctx)
      return { secret, otpauthUri: otpauthUri(secret, user.username, issuer) }
    },

    async confirm (userId, sessionId, code, ctx) {
      const state = await repo.mfaState(userId)
      if (state === undefined) throw new UserGoneError()
      if (state.enabled || state.sealedSecret === null) throw new MfaStateError(MFA_NOTHING_TO_CONFIRM)
      const step = matchTotp(open(state.sealedSecret, userId), code)
      if (step === null) throw new InvalidCodeError(400)
      // The other sessions must be revocable: 503 before TOTP is turned on, not after.
      await fastify.revocationStore.ping()
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode)
      const now = Date.now()
      const result = await repo.confirmMfa({
        userId,
        step,
        recoveryCodeHashes: codes.map(hashRecoveryCode),
        sessionId,
        now
      })
      if (result === 'nothing') throw new MfaStateError(MFA_NOTHING_TO_CONFIRM)
      fastify.metrics.revocations.inc({ cause: 'mfa_enabled' }, result.count)
      await audit.record({ event: 'mfa.enabled', userId, sessionsRevoked: result.count }, ctx)
      await fastify.revocationStore.revoke(result.entries)
      return codes
    },

    async disable (userId, currentPassword, code, ctx) {
      await checkPassword(userId, currentPassword, ctx)
      const state = await repo.mfaState(userId)
      if (state === undefined) throw new UserGoneError()
      if (!state.enabled) throw new MfaStateError(MFA_NOT_ENABLED)
      const input = /^[0-9]{6}$/.test(code) ? { code } : { recoveryCode: code }
      const proof = await service.proofOf(userId, input, Date.now())
      if (proof === null || !await repo.useMfaProof(userId, proof, Date.now())) {
        await audit.record({ event: 'mfa.denied', userId, reason: 'bad_code' }, ctx)
        throw new InvalidCodeError(403)
      }
      await repo.disableMfa(userId)
      await audit.record({ event: 'mfa.disabled', userId }, ctx)
    },

    async proofOf (userId, input, now) {
      if (input.recoveryCode !== undefined) return { recoveryCodeHash: hashRecoveryCode(input.recoveryCode) }
      if (input.code === undefined) return null
      const state = await repo.mfaState(userId)
      if (state === undefined || !state.enabled || state.sealedSecret === null) return null
      const step = matchTotp(open(state.sealedSecret, userId), input.code, now)
      return step === null ? null : { step }
    }
  }
  fastify.decorate('mfa', service)
}, {
  name: 'mfa',
  dependencies: ['config', 'repositories', 'passwords', 'audit', 'revocation-store', 'metrics']
})
