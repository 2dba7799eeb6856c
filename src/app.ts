import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import autoload from '@fastify/autoload'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { TSchema } from '@sinclair/typebox'
import type { Config } from './config'
import { ErrorResponse } from './schemas/common'
import { Credentials, LoginCredentials, User, UserPatch } from './schemas/users'
import { IntrospectRequest, LogoutRequest, RefreshRequest, TokenPair } from './schemas/tokens'
import { Session } from './schemas/sessions'
import {
  AdminUser, AdminUserDetail, MfaChallenge, MfaLoginRequest, PasswordResetRequest, TotpConfirmRequest,
  TotpDisableRequest,
  TotpEnrolmentRequest
} from './schemas/accounts'
import { CompatMessageError, CompatMsgError, CompatTokenInput } from './schemas/compat'
import { errorBody, setCommonHeaders } from './http-errors'
import { ERROR_MESSAGE_KEYWORD, formatValidationErrors } from './validation'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface AppOptions {
  config: Config
}

const REQUEST_ID_PREFIX = randomBytes(6).toString('base64url')
let requestCounter = 0

// What a client may send as X-Request-Id to correlate our log lines with its own: short,
// printable ASCII only, so it can neither inject control characters nor bloat the lines.
const CLIENT_REQUEST_ID = /^[\x20-\x7e]{1,128}$/

/**
 * The request's logger (Fastify makes one per request anyway, bound to our reqId): a valid
 * client X-Request-Id is added to it as `clientRequestId`, at no extra cost when absent.
 */
type ChildLoggerFactory = NonNullable<FastifyServerOptions['childLoggerFactory']>
const withClientRequestId: ChildLoggerFactory = function (logger, bindings, opts, rawReq) {
  const sent = rawReq.headers['x-request-id']
  if (typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent)) {
    return logger.child({ ...bindings, clientRequestId: sent }, opts)
  }
  return logger.child(bindings, opts)
}

/**
 * Fastify 5.12 ignores a numeric trustProxy (it trusts nothing then), so a hop count is
 * given as the function proxy-addr would build for it: the socket's peer and the n-1
 * entries before it in X-Forwarded-For are our proxies; the client is the next one. This
 * is sound only when the service can be reached through those proxies alone (README).
 */
function trustProxyOption (trust: Config['trustProxy']): FastifyServerOptions['trustProxy'] {
  if (typeof trust !== 'number') return trust
  return (_address: string, hop: number) => hop < trust
}

/**
 * Errors Fastify meets before any route (and so before any hook) runs: a path parameter over
 * maxParamLength (414) and a malformed URL (400). Answered in the contract's shape, with the
 * headers every answer carries; Fastify's own answer had neither.
 */
const frameworkErrors: NonNullable<FastifyServerOptions['frameworkErrors']> = function (error, request, reply) {
  const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
  const statusCode = tooLong ? 414 : 400
  const message = tooLong
    ? `A path segment is too long (at most ${MAX_PARAM_LENGTH} characters)`
    : 'The URL is not valid (malformed percent-encoding)'
  request.log.info({ statusCode, code: error.code }, message)
  const answer = reply as FastifyReply // no route, so no schema to type it by
  setCommonHeaders(answer, request.url)
  answer.status(statusCode).send(errorBody(statusCode, message, error.code))
}

/** Longest path parameter the router accepts (session ids are UUIDs, at most 64 by their schema). */
export const MAX_PARAM_LENGTH = 200

/** Server options shared by production (server.ts) and the tests (test/helper.ts). */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    bodyLimit: 16 * 1024,
    // Plugins connect to databases and start worker threads: a busy machine needs more than
    // 10 s. The database plugin may also wait for PostgreSQL (DATABASE_START_WAIT_MS).
    pluginTimeout: 30_000 + (config.database.kind === 'postgres' ? config.database.startWaitMs : 0),
    trustProxy: trustProxyOption(config.trustProxy),
    // The request id is always ours: a client must not choose what our log lines are keyed by.
    requestIdHeader: false,
    // Unique across processes and restarts, and cheaper than a UUID per request.
    genReqId: () => `${REQUEST_ID_PREFIX}-${(++requestCounter).toString(36)}`,
    childLoggerFactory: withClientRequestId,
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
    schemaErrorFormatter: formatValidationErrors,
    ajv: {
      customOptions: {
        // The contract wants 400 for unknown properties and wrong types, not silent fixes.
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: true,
        allErrors: false,
        // The failing schema on each error, for messages that say what is allowed (src/validation.ts).
        verbose: true,
        keywords: [ERROR_MESSAGE_KEYWORD]
      }
    }
  }
}

/**
 * The application: three autoload passes, in order.
 * 1. plugins/external: one thin file per third-party plugin (db, redis, jwt, swagger ...).
 * 2. plugins/app: our capabilities (repositories, tokens, sessions, authenticate ...),
 *    each a named fastify-plugin that declares what it depends on.
 * 3. routes: encapsulated route files; a folder's autohooks.ts guards that folder only.
 */
export default async function app (fastify: FastifyInstance, opts: AppOptions) {
  const { config } = opts
  await fastify.register(fp(async (f) => { f.decorate('config', config) }, { name: 'config' }))

  // Shared schemas, named by their $id: components of the OpenAPI document, so that generated
  // clients get one named type each (never InlineObjectN, never one per route).
  const shared: TSchema[] = [
    ErrorResponse, User, TokenPair, Session, Credentials, LoginCredentials, UserPatch, RefreshRequest, LogoutRequest,
    IntrospectRequest, MfaChallenge, MfaLoginRequest, PasswordResetRequest, AdminUser, AdminUserDetail,
    TotpEnrolmentRequest, TotpConfirmRequest, TotpDisableRequest
  ]
  if (config.compatRoutes) shared.push(CompatMsgError, CompatMessageError, CompatTokenInput)
  for (const schema of shared) fastify.addSchema(schema)

  await fastify.register(autoload, { dir: join(__dirname, '..', 'plugins', 'external'), options: {} })
  await fastify.register(autoload, { dir: join(__dirname, '..', 'plugins', 'app'), options: {} })
  await fastify.register(autoload, {
    dir: join(__dirname, '..', 'routes'),
    options: {},
    autoHooks: true,
    cascadeHooks: true,
    // The seed-compatible routes live at the root, as their clients expect.
    dirNameRoutePrefix: (_parent: string, folder: string) => (folder === 'compat' ? false : folder),
    ignorePattern: config.compatRoutes ? undefined : /^compat$/
  })
}

/** Builds the whole service on a new Fastify instance; listening is the caller's business. */
export async function buildApp (config: Config, options: FastifyServerOptions = {}) {
  const fastify = Fastify({ ...serverOptions(config), ...options }).withTypeProvider<TypeBoxTypeProvider>()
  // fp: the app's decorators stay visible on the instance the caller holds (tests use them).
  await fastify.register(fp(app), { config })
  return fastify
}
