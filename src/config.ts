import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { Type, type Static } from '@sinclair/typebox'
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value'
import {
  isJwtAlg, JWT_ALGS, KeyFileError, keysFileModeWarning, readKeySet, type JwtAlg, type SigningKey
} from './signing-keys'

/**
 * The environment, as a TypeBox schema. It is read once, at start (`loadConfig`);
 * nothing else in the service reads `process.env`.
 */
const Bool = Type.Union([Type.Literal('true'), Type.Literal('false')])
/** A whole number within bounds: written as digits only (loadConfig reads those as numbers). */
const Int = (min: number, max: number) => Type.Integer({ minimum: min, maximum: max })

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Optional(Type.String()),
  PORT: Type.Optional(Int(0, 65535)),
  HOST: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_POOL_SIZE: Type.Optional(Int(1, 100)),
  DATABASE_START_WAIT_MS: Type.Optional(Int(0, 600000)),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_PREFIX: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$' })),
  JWT_SECRET: Type.Optional(Type.String()),
  JWT_ALG: Type.Optional(Type.String()),
  JWT_KEYS_FILE: Type.Optional(Type.String()),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  ACCESS_TOKEN_TTL: Type.Optional(Int(30, 86400)),
  REFRESH_TOKEN_TTL: Type.Optional(Int(60, 31536000)),
  BCRYPT_COST: Type.Optional(Int(4, 15)), // 4-9 only with NODE_ENV=test: see loadConfig
  COMPAT_ROUTES: Type.Optional(Bool),
  CORS_ORIGIN: Type.Optional(Type.String()),
  RATE_LIMITS: Type.Optional(Type.Union([Type.Literal('on'), Type.Literal('off')])),
  TRUST_PROXY: Type.Optional(Type.String()),
  LOG_LEVEL: Type.Optional(Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)))),
  AUDIT_LOG: Type.Optional(Type.Union([Type.Literal('log'), Type.Literal('table')])),
  AUDIT_RETENTION_DAYS: Type.Optional(Int(1, 3650)),
  HASHING_MAX_WAIT_MS: Type.Optional(Int(100, 600000)),
  WORKERS: Type.Optional(Int(1, 64)),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16, maxLength: 256 })),
  METRICS_PORT: Type.Optional(Int(1, 65535)),
  METRICS_HOST: Type.Optional(Type.String({ minLength: 1 })),
  SHUTDOWN_DRAIN_MS: Type.Optional(Int(0, 60000)),
  REVOCATION_FEED_TOKEN: Type.Optional(Type.String({ minLength: 32, maxLength: 512 })),
  MFA_ENCRYPTION_KEY: Type.Optional(Type.String()),
  MFA_ENROLMENT: Type.Optional(Type.Union([Type.Literal('on'), Type.Literal('off')])),
  MFA_ISSUER: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[^:]+$' }))
})
export type Env = Static<typeof EnvSchema>

export interface Config {
  production: boolean
  port: number
  host: string
  database:
  | { kind: 'sqlite', filename: string }
  /**
   * `poolSize`: connections per process; `startWaitMs`: how long the start waits for a
   * PostgreSQL that is not reachable yet
   */
  | { kind: 'postgres', url: string, poolSize: number, startWaitMs: number }
  redisUrl: string | undefined
  /** prefix of every Redis key this service writes, so that instances or tests can share a server */
  redisPrefix: string
  jwt: {
    /** the one algorithm access tokens are signed and verified with */
    alg: JwtAlg
    /** the HS256 key; empty (and JWT_SECRET not read) with an asymmetric alg */
    secret: Buffer
    /** true when no JWT_SECRET was given and a random one was made at start */
    ephemeralSecret: boolean
    /** EdDSA/ES256/RS256: JWT_KEYS_FILE's keys, the first one signs; none with HS256 */
    keys: SigningKey[]
    /** set when JWT_KEYS_FILE is readable by group or others: logged as a warning at start */
    keysFileWarning: string | undefined
    issuer: string
    audience: string
  }
  accessTokenTtl: number
  refreshTokenTtl: number
  bcryptCost: number
  compatRoutes: boolean
  corsOrigin: string[] | '*' | undefined
  rateLimits: boolean
  /**
   * Fastify's trustProxy: false (the socket's address), a hop count, or the proxies'
   * addresses/CIDRs. Never `true`: that would let any client choose its IP.
   */
  trustProxy: false | number | string[]
  logLevel: string
  /** security events (docs/audit.md): always logged; `table` also writes them to audit_events, kept `retentionDays` */
  audit: { table: boolean, retentionDays: number }
  /** password hashing queued beyond this (estimated, ms) is refused with 503 (load shedding) */
  hashingMaxWaitMs: number
  workers: number
  /** GET /metrics: with a bearer token on the service's port, and/or on a port of its own */
  /** `host`: where METRICS_PORT listens (METRICS_HOST, loopback unless set: the metrics have no token there) */
  metrics: { token: string | undefined, port: number | undefined, host: string }
  /** how long /health/ready answers 503 before the listener closes, on SIGTERM */
  shutdownDrainMs: number
  /** the Bearer token of GET /revocations and /revocations/stream; unset: the feed does not exist */
  revocationFeedToken: string | undefined
  /**
   * Two-factor (TOTP). `key`: AES-256-GCM key the secrets are encrypted with (undefined only in
   * production with enrolment off and no key: TOTP logins then answer 503); `ephemeralKey`: made
   * at start (not production), so enrolments do not survive a restart; `issuer`: the name
   * authenticator apps show.
   */
  mfa: { key: Buffer | undefined, ephemeralKey: boolean, enrolment: boolean, issuer: string }
}

export class ConfigError extends Error {
  constructor (public readonly variable: string, reason: string) {
    super(`Invalid configuration: ${variable} ${reason}`)
    this.name = 'ConfigError'
  }
}

/** The variables the schema types as whole numbers (Int). */
const INT_VARIABLES = Object.entries(EnvSchema.properties)
  .filter(([, schema]) => schema.type === 'integer').map(([name]) => name)

/** What the schema's first complaint means, in the words of this service's other config errors. */
function reasonOf (error: ValueError): string {
  const { minimum, maximum } = error.schema as { minimum?: number, maximum?: number }
  switch (error.type) {
    case ValueErrorType.Integer: return 'must be a whole number'
    case ValueErrorType.IntegerMinimum: return `must be at least ${minimum}`
    case ValueErrorType.IntegerMaximum: return `must be at most ${maximum}`
    default: return `is invalid: ${error.message}`
  }
}

/** The database when DATABASE_URL is unset. */
export const DEFAULT_DATABASE_URL = 'file:./data/auth.db'

/**
 * `postgres://` or `postgresql://` selects PostgreSQL; else `file:./data/auth.db`, a bare path
 * or `:memory:` (SQLite). Exported for drizzle.config.ts, which picks its dialect the same way.
 */
export function parseDatabaseUrl (raw: string, poolSize = 10, startWaitMs = 30_000): Config['database'] {
  if (/^postgres(ql)?:\/\//i.test(raw)) {
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      // the URL itself is not echoed: it may hold a password
      throw new ConfigError('DATABASE_URL', 'is not a valid postgres:// URL')
    }
    if (url.hostname === '' && !url.searchParams.has('host')) {
      throw new ConfigError('DATABASE_URL', 'names no PostgreSQL host')
    }
    return { kind: 'postgres', url: raw, poolSize, startWaitMs }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new ConfigError('DATABASE_URL',
      'must be postgres://, postgresql://, a SQLite file (file:path or a path) or :memory:')
  }
  const filename = raw.startsWith('file:') ? raw.slice('file:'.length) : raw
  if (filename === '') throw new ConfigError('DATABASE_URL', 'names no file')
  return { kind: 'sqlite', filename }
}

function parseCors (raw: string | undefined): Config['corsOrigin'] {
  if (raw === undefined || raw.trim() === '') return undefined
  if (raw.trim() === '*') return '*'
  const origins = raw.split(',').map((o) => o.trim()).filter(Boolean)
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError('CORS_ORIGIN', `has an origin that is not scheme://host[:port]: ${origin}`)
    }
  }
  return origins
}

/**
 * TRUST_PROXY: unset (trust none), a hop count, or comma-separated proxy addresses/CIDRs.
 * `true` is refused: every client could then pick the IP it is rate limited under.
 */
function parseTrustProxy (raw: string | undefined): Config['trustProxy'] {
  const value = raw?.trim() ?? ''
  // `false` was the old documented default: it still means "trust none".
  if (value === '' || value.toLowerCase() === 'false') return false
  if (value.toLowerCase() === 'true') {
    throw new ConfigError('TRUST_PROXY',
      'must not be true (any client could choose its IP): give a hop count (e.g. 1) or the proxy addresses/CIDRs')
  }
  if (/^[0-9]+$/.test(value)) {
    const hops = Number(value)
    if (!Number.isSafeInteger(hops) || hops < 1) {
      throw new ConfigError('TRUST_PROXY',
        'hop count must be a positive whole number (or leave it unset to trust none)')
    }
    return hops
  }
  const entries = value.split(',').map((s) => s.trim())
  for (const entry of entries) {
    const [address, prefix, ...rest] = entry.split('/')
    const family = isIP(address)
    // /0 would trust every address, which is `true` under another name.
    const bits = family === 4 ? 32 : 128
    const prefixOk = prefix === undefined ||
      (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= bits)
    if (family === 0 || rest.length > 0 || !prefixOk) {
      throw new ConfigError('TRUST_PROXY',
        `must be a hop count or comma-separated proxy IP addresses/CIDRs; not one: "${entry.slice(0, 64)}"`)
    }
  }
  return entries
}

/**
 * Parses the environment. Throws a ConfigError naming the first bad variable;
 * the caller (server.ts) prints it and exits, so nothing starts half-configured.
 */
export function loadConfig (source: Record<string, string | undefined> = process.env): Config {
  // Only our variables, and empty strings count as unset (as in most .env tooling).
  const env: Record<string, string | number> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]
    if (value !== undefined && value !== '') env[key] = value
  }
  // Digits only make a number; anything else ('1.5', '-5', '1e3', '0x10') stays a string,
  // which the schema refuses as not a whole number.
  for (const key of INT_VARIABLES) {
    const value = env[key]
    if (typeof value === 'string' && /^[0-9]+$/.test(value)) env[key] = Number(value)
  }
  if (!Value.Check(EnvSchema, env)) {
    const first = Value.Errors(EnvSchema, env).First()
    const variable = first ? first.path.replace(/^\//, '') : 'environment'
    throw new ConfigError(variable, first === undefined ? 'is invalid' : reasonOf(first))
  }
  const e = env as Env
  const production = e.NODE_ENV === 'production'
  // The floor is 10 wherever passwords are real. A test suite (NODE_ENV=test) may go down to
  // bcrypt's own minimum, 4: its servers check what is done with a hash, not what it costs, and
  // at 10 the hashing was most of the suite's CPU time on CI's 2 cores.
  if (e.BCRYPT_COST !== undefined && e.BCRYPT_COST < 10 && e.NODE_ENV !== 'test') {
    throw new ConfigError('BCRYPT_COST', 'must be at least 10 (4 to 9 only with NODE_ENV=test, for test suites)')
  }

  const alg = e.JWT_ALG ?? 'HS256'
  if (!isJwtAlg(alg)) throw new ConfigError('JWT_ALG', `must be one of ${JWT_ALGS.join(', ')}`)
  let secret = Buffer.alloc(0)
  let ephemeralSecret = false
  let keys: SigningKey[] = []
  let keysFileWarning: string | undefined
  if (alg !== 'HS256') {
    // JWT_SECRET is not read: the keys of JWT_KEYS_FILE sign and verify.
    if (e.JWT_KEYS_FILE === undefined) {
      throw new ConfigError('JWT_KEYS_FILE',
        `is required when JWT_ALG=${alg} (a JWK Set of private keys; npm run keys -- generate)`)
    }
    try {
      keys = readKeySet(e.JWT_KEYS_FILE, alg)
    } catch (err) {
      if (err instanceof KeyFileError) throw new ConfigError('JWT_KEYS_FILE', err.message)
      throw err
    }
    keysFileWarning = keysFileModeWarning(e.JWT_KEYS_FILE)
  } else if (e.JWT_KEYS_FILE !== undefined) {
    // Most likely a forgotten JWT_ALG: starting on a random HS256 key instead would be half-configured.
    throw new ConfigError('JWT_KEYS_FILE',
      'is set, but JWT_ALG is HS256 (the default): set JWT_ALG to the algorithm of its keys, or unset JWT_KEYS_FILE')
  } else if (e.JWT_SECRET !== undefined) {
    secret = Buffer.from(e.JWT_SECRET, 'utf8')
    if (secret.length < 32) throw new ConfigError('JWT_SECRET', 'must be at least 32 bytes (256 bits) for HS256')
    if (e.JWT_SECRET.trim() !== e.JWT_SECRET) {
      throw new ConfigError('JWT_SECRET', 'must not start or end with whitespace')
    }
  } else if (production) {
    throw new ConfigError('JWT_SECRET', 'is required when NODE_ENV=production')
  } else {
    secret = randomBytes(32)
    ephemeralSecret = true
  }

  const accessTokenTtl = e.ACCESS_TOKEN_TTL ?? 900
  const refreshTokenTtl = e.REFRESH_TOKEN_TTL ?? 2592000
  if (refreshTokenTtl < accessTokenTtl) {
    throw new ConfigError('REFRESH_TOKEN_TTL', 'must not be shorter than ACCESS_TOKEN_TTL')
  }

  const workers = e.WORKERS ?? 1
  if (workers > 1 && e.REDIS_URL === undefined) {
    throw new ConfigError('WORKERS',
      'above 1 needs REDIS_URL: an in-process revocation store cannot be shared between processes')
  }

  const mfaEnrolment = (e.MFA_ENROLMENT ?? 'on') === 'on'
  let mfaKey: Buffer | undefined
  let ephemeralMfaKey = false
  if (e.MFA_ENCRYPTION_KEY !== undefined) {
    // base64 or base64url of exactly 32 bytes (openssl rand -base64 32)
    if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(e.MFA_ENCRYPTION_KEY)) {
      throw new ConfigError('MFA_ENCRYPTION_KEY', 'must be 32 random bytes in base64 (openssl rand -base64 32)')
    }
    mfaKey = Buffer.from(e.MFA_ENCRYPTION_KEY.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  } else if (production && mfaEnrolment) {
    throw new ConfigError('MFA_ENCRYPTION_KEY',
      'is required when NODE_ENV=production and two-factor enrolment is on (MFA_ENROLMENT=on, the default)')
  } else if (!production) {
    mfaKey = randomBytes(32)
    ephemeralMfaKey = true
  }

  return {
    production,
    port: e.PORT ?? 3000,
    host: e.HOST ?? '127.0.0.1',
    database: parseDatabaseUrl(e.DATABASE_URL ?? DEFAULT_DATABASE_URL, e.DATABASE_POOL_SIZE ?? 10,
      e.DATABASE_START_WAIT_MS ?? 30_000),
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX ?? 'auth:',
    jwt: {
      alg,
      secret,
      ephemeralSecret,
      keys,
      keysFileWarning,
      issuer: e.JWT_ISSUER ?? 'auth-service',
      audience: e.JWT_AUDIENCE ?? 'auth-service'
    },
    accessTokenTtl,
    refreshTokenTtl,
    bcryptCost: e.BCRYPT_COST ?? 12,
    compatRoutes: (e.COMPAT_ROUTES ?? 'true') === 'true',
    corsOrigin: parseCors(e.CORS_ORIGIN),
    rateLimits: (e.RATE_LIMITS ?? 'on') === 'on',
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    logLevel: e.LOG_LEVEL ?? 'info',
    audit: { table: e.AUDIT_LOG === 'table', retentionDays: e.AUDIT_RETENTION_DAYS ?? 90 },
    hashingMaxWaitMs: e.HASHING_MAX_WAIT_MS ?? 2000,
    workers,
    metrics: {
      token: e.METRICS_TOKEN,
      port: e.METRICS_PORT,
      host: e.METRICS_HOST ?? '127.0.0.1'
    },
    shutdownDrainMs: e.SHUTDOWN_DRAIN_MS ?? 1000,
    revocationFeedToken: e.REVOCATION_FEED_TOKEN,
    mfa: { key: mfaKey, ephemeralKey: ephemeralMfaKey, enrolment: mfaEnrolment, issuer: e.MFA_ISSUER ?? 'auth-service' }
  }
}
