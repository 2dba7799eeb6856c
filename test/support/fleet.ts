import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { REDIS_URL, requireRedis } from './redis'
import { startPair, type Pair } from './cluster'
import { generateSigningJwk } from '../../src/signing-keys'
import { installFromTarball, startDownstream, type Downstream } from '../../packages/verifier/test/tarball'

// The verifier plugin's world for the end-to-end tests: two service instances on one
// database and one Redis, signing with EdDSA and serving the revocation feed, and downstream
// apps (packages/verifier/example/server.js) installed from the plugin's packed tarball, each
// a process of its own.

export interface Fleet {
  pair: Pair
  feedToken: string
  dir: string
  /** a downstream app whose feed list is `feeds` (stream URLs), tried in that order */
  downstream: (feeds: string[], env?: Record<string, string>) => Promise<Downstream>
}

let installed: Promise<{ dir: string }> | null = null

export async function startFleet (t: Test): Promise<Fleet> {
  await requireRedis(t)
  const keyDir = mkdtempSync(join(tmpdir(), 'verifier-keys-'))
  const keyFile = join(keyDir, 'keys.json')
  writeFileSync(keyFile, JSON.stringify({ keys: [await generateSigningJwk('EdDSA')] }), { mode: 0o600 })
  const feedToken = randomBytes(24).toString('hex')
  // One after the other: npm install and two starting services at once starve a busy machine.
  installed ??= installFromTarball()
  const { dir } = await installed
  const pair = await startPair(t, { redisUrl: REDIS_URL, env: { REVOCATION_FEED_TOKEN: feedToken, JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile } })
  return {
    pair,
    feedToken,
    dir,
    async downstream (feeds, env = {}) {
      const app = await startDownstream(dir, {
        AUTH_ISSUER: 'auth-service',
        AUTH_AUDIENCE: 'auth-service',
        AUTH_JWKS_URL: `${pair.a.url}/.well-known/jwks.json`,
        AUTH_FEED_URLS: feeds.join(','),
        REVOCATION_FEED_TOKEN: feedToken,
        ...env
      })
      t.teardown(app.stop)
      return app
    }
  }
}

export const streamOf = (base: string) => `${base}/revocations/stream`

/** ms from `since` until `path` with `token` answers 401 (polled back to back), or throws after `ms`. */
export async function refusedAfter (app: Downstream, token: string, since: number, ms = 10_000): Promise<number> {
  for (;;) {
    const res = await app.get('/me', token)
    if (res.status === 401) return Date.now() - since
    if (Date.now() - since > ms) throw new Error(`still ${res.status} after ${ms} ms`)
  }
}

export function distribution (values: number[]): { n: number, p50: number, p99: number, max: number } {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] }
}
