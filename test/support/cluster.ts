import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { redisPrefix, startServer, type RunningServer } from '../helper'
import { startRedisProxy, type RedisProxy } from './redis-proxy'

export interface Pair {
  a: RunningServer
  b: RunningServer
  /** the proxy that `proxied` reaches Redis through (null when none is) */
  proxy: RedisProxy | null
  prefix: string
  /** DATABASE_URL both processes share */
  databaseUrl: string
}

/**
 * Two service processes, A and B, as production runs them: one database (a new SQLite file
 * unless `databaseUrl` is given, e.g. testDatabase's), one Redis, one REDIS_PREFIX.
 * `proxied` ('a' or 'b') reaches Redis through a test proxy that can stall or cut its links. Rate limits are off: races fire many logins from one address.
 */
export async function startPair (
  t: Test, opts: { redisUrl: string, proxied?: 'a' | 'b', env?: Record<string, string>, databaseUrl?: string }
): Promise<Pair> {
  const prefix = redisPrefix()
  const databaseUrl = opts.databaseUrl ?? `file:${join(mkdtempSync(join(tmpdir(), 'auth-pair-')), 'auth.db')}`
  let proxy: RedisProxy | null = null
  if (opts.proxied !== undefined) {
    const port = Number(new URL(opts.redisUrl).port)
    const p = await startRedisProxy({ port })
    t.teardown(() => p.close())
    proxy = p
  }
  const env = (name: 'a' | 'b') => ({
    RATE_LIMITS: 'off',
    ...opts.env,
    DATABASE_URL: databaseUrl,
    REDIS_PREFIX: prefix,
    REDIS_URL: name === opts.proxied ? proxy!.url : opts.redisUrl
  })
  // One after the other: the first applies the migrations to the shared file.
  const a = await startServer(t, env('a'))
  const b = await startServer(t, env('b'))
  return { a, b, proxy, prefix, databaseUrl }
}
