import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { buildApp } from '../../src/app'
import { loadConfig } from '../../src/config'
import type { TokenPair } from '../../src/schemas/tokens'
import { DIALECT, fileDatabase } from './postgres'
import { cachedSerializers } from './serializers'

// Building the app for a test, and the users and tokens most tests start from.

export type App = Awaited<ReturnType<typeof buildApp>>

/** A test key: 32+ bytes, made per process, never a fixed string. */
export const TEST_SECRET = randomBytes(32).toString('base64url')
/** The TOTP secrets' key (MFA_ENCRYPTION_KEY): per test process, shared by the servers it starts. */
export const TEST_MFA_KEY = randomBytes(32).toString('base64')

/** The environment every test app and test server starts from: in-memory SQLite, the cheapest bcrypt, silent logs. */
export function testEnv (overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: ':memory:',
    // bcrypt's minimum, which only NODE_ENV=test accepts: tests check what is done with a hash,
    // not its cost, and at 10 hashing was most of the suite's time (two route files on a busy
    // machine: 284 s at 10, 69 s at 4). Tests that need slow hashing set BCRYPT_COST.
    BCRYPT_COST: '4',
    JWT_SECRET: TEST_SECRET,
    MFA_ENCRYPTION_KEY: TEST_MFA_KEY,
    LOG_LEVEL: 'silent',
    ...overrides
  }
}

/**
 * The real application, built with the production options, closed when the test ends.
 * SQLite: a database of its own in memory. PostgreSQL: this test file's database (made on
 * first use, dropped when the file ends) unless DATABASE_URL is given.
 */
export async function build (
  t: Test,
  overrides: Record<string, string | undefined> = {},
  options: Parameters<typeof buildApp>[1] = {}
): Promise<App> {
  if (DIALECT === 'postgres' && !('DATABASE_URL' in overrides)) overrides = { ...overrides, DATABASE_URL: await fileDatabase() }
  // No load shedding unless a test asks for it: a loaded machine starves the nice-19 hashing
  // threads, and a set-up login shed with 503 is not what a test checks (CI saw it at load 15).
  const app = await buildApp(loadConfig(testEnv({ HASHING_MAX_WAIT_MS: '600000', ...overrides })),
    { schemaController: { compilersFactory: { buildSerializer: cachedSerializers } }, ...options })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

let counter = 0
/** A username no other test file will pick. */
export function uniqueName (prefix = 'user'): string {
  counter++
  return `${prefix}_${process.pid}_${counter}_${randomBytes(3).toString('hex')}`
}

export const PASSWORD = 'correct horse battery staple'

export async function register (app: App, username = uniqueName(), password = PASSWORD) {
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { username, password } })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  return { ...(res.json() as { id: string, username: string, created_at: string }), password }
}

export async function login (app: App, username: string, password = PASSWORD): Promise<TokenPair> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** A registered, logged-in user. */
export async function newUser (app: App, password = PASSWORD) {
  const user = await register(app, uniqueName(), password)
  const tokens = await login(app, user.username, password)
  return { ...user, tokens, auth: bearer(tokens.access_token) }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
