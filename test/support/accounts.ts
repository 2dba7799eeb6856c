import { setTimeout as sleep } from 'node:timers/promises'
import { totpCode, TOTP_PERIOD } from '../../src/security/totp'

// Two-factor helpers for tests: codes as an authenticator app computes them.

/**
 * The code of the step `offset` steps from now (-1, 0, +1 are inside the window). A test
 * that uses several steps waits first (awayFromStepBoundary) so the window cannot move
 * between computing a code and the server checking it.
 */
export const codeAt = (secret: string, offset = 0) => totpCode(secret, Date.now() + offset * TOTP_PERIOD * 1000)

/** Waits until the current 30 s step has at least 12 s left (a condition on the clock, not a fixed delay). */
export async function awayFromStepBoundary (): Promise<void> {
  for (;;) {
    const into = Date.now() % (TOTP_PERIOD * 1000)
    if (into >= 500 && into <= (TOTP_PERIOD - 12) * 1000) return
    await sleep(250)
  }
}
