import type { VerifiedClaims } from './claims'

/**
 * The claims of tokens that passed every check, for both verifiers (HS256 and asymmetric).
 * Clients send the same token for its whole life, so a hit saves the signature check.
 * Keyed by the exact token text (no hash, so no key collisions: a look-alike token is
 * never vouched for). A hit re-checks `exp` and `nbf`, the only checks that change with
 * time; revocation is never cached here (the blocklist is asked on every request).
 * Bounded: when full it is emptied and refilled by the next requests (one signature check
 * per live token); a hit is one Map lookup, with nothing to reorder.
 */
export class VerifiedTokenCache {
  readonly #entries = new Map<string, VerifiedClaims>()

  /** @param size how many tokens to remember (0: none) */
  constructor (readonly size: number) {}

  /**
   * The cached claims when they are still current at `t` (seconds), 'expired' when they are
   * not (the entry is dropped), undefined when the token is not cached.
   */
  get (token: string, t: number): VerifiedClaims | 'expired' | undefined {
    const hit = this.#entries.get(token)
    if (hit === undefined) return undefined
    if (hit.exp > t && (hit.nbf === undefined || hit.nbf <= t)) return hit
    this.#entries.delete(token)
    return 'expired'
  }

  set (token: string, claims: VerifiedClaims): void {
    if (this.size <= 0) return
    if (this.#entries.size >= this.size) this.#entries.clear()
    this.#entries.set(token, claims)
  }
}
