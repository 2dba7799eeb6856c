import { readFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { test } from 'tap'
import Fastify, { type RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import Ajv from 'ajv'
import { validate, compileErrors } from '@readme/openapi-parser'
import app, { serverOptions } from '../../src/app'
import { loadConfig } from '../../src/config'
import { OPENAPI_ENV, OPENAPI_FILE, renderOpenApi, servedOpenApi } from '../../scripts/write-openapi'
import { build, PASSWORD, TEST_SECRET, testEnv, uniqueName, type App } from '../helper'

interface Operation {
  operationId?: string
  summary?: string
  tags?: string[]
  deprecated?: boolean
  security?: Array<Record<string, string[]>>
  parameters?: Array<{ in: string, name: string, required?: boolean, schema?: object }>
  requestBody?: { content?: Record<string, { schema?: object }> }
  responses?: Record<string, { description?: string, content?: Record<string, { schema?: object }> }>
}
interface Document {
  tags?: Array<{ name: string }>
  paths: Record<string, Record<string, Operation>>
  components: { securitySchemes?: Record<string, { type: string, scheme?: string }> }
}

/** The revocation feed exists only with a token (the document is written with one: OPENAPI_ENV). */
const FEED_TOKEN = 'a-feed-token-for-the-document-tests-0123'

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace']
const committedText = readFileSync(OPENAPI_FILE, 'utf8')
const committed = JSON.parse(committedText) as Document

function operations (doc: Document) {
  const out: Array<{ path: string, method: string, op: Operation }> = []
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (METHODS.includes(method)) out.push({ path, method, op })
    }
  }
  return out
}

/** The routes the app really registers (method, URL, options), seen by an onRoute hook. */
async function registeredRoutes (): Promise<RouteOptions[]> {
  const config = loadConfig(OPENAPI_ENV)
  const instance = Fastify(serverOptions(config))
  const routes: RouteOptions[] = []
  instance.addHook('onRoute', (route) => { routes.push(route) })
  // The same registration as buildApp; buildApp itself gives no way in before the routes load.
  await instance.register(fp(app), { config })
  await instance.ready()
  await instance.close()
  return routes
}

const toOpenApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')

test('openapi.json is exactly what `npm run openapi` writes from the app (run it after a schema change)', async (t) => {
  const written = renderOpenApi(await servedOpenApi())
  t.same(committed, JSON.parse(written), 'openapi.json is stale: run `npm run openapi` and commit the result')
  t.equal(committedText, written, 'byte for byte, as the script formats it')
})

test('the app serves the committed document, whatever its secret and test settings', async (t) => {
  // A different JWT secret, bcrypt cost, database and feed token: none of it may reach the document.
  const served = await servedOpenApi(testEnv({ REVOCATION_FEED_TOKEN: FEED_TOKEN }))
  t.same(served, committed, 'GET /docs/json differs from openapi.json')
  const text = JSON.stringify(served)
  t.notOk(text.includes(TEST_SECRET), 'the JWT secret does not appear in the document')
  t.notOk(text.includes(Buffer.from(TEST_SECRET).toString('base64')), 'nor does its base64 form')
  t.notOk(text.includes(FEED_TOKEN), 'nor the revocation feed\'s token')
})

test('openapi.json is valid OpenAPI 3 by @readme/openapi-parser', async (t) => {
  // validate() dereferences in place: give it a copy.
  const result = await validate(structuredClone(committed) as Parameters<typeof validate>[0])
  t.equal(result.specification, 'OpenAPI')
  t.ok(result.valid, result.valid ? 'valid' : compileErrors(result))
  t.same(result.warnings, [], 'no warnings')
  t.match((committed as unknown as { openapi: string }).openapi, /^3\./)
})

test('every route the app registers is in the document, and nothing else is', async (t) => {
  const routes = await registeredRoutes()
  const expected = new Set<string>()
  for (const route of routes) {
    if ((route.schema as { hide?: boolean } | undefined)?.hide === true) continue
    for (const method of [route.method].flat()) {
      // Fastify adds HEAD for every GET; OpenAPI leaves it implied.
      if (method === 'HEAD') continue
      expected.add(`${method.toLowerCase()} ${toOpenApiPath(route.url)}`)
    }
  }
  const documented = new Set(operations(committed).map(({ path, method }) => `${method} ${path}`))
  t.same([...documented].sort(), [...expected].sort())
  t.ok(documented.has('post /auth/login'), 'sanity: the walk found the service API')
})

test('every operation is complete: id, summary, tags, request and response schemas, security', async (t) => {
  const routes = await registeredRoutes()
  const declaredTags = new Set((committed.tags ?? []).map((tag) => tag.name))
  const schemes = committed.components.securitySchemes ?? {}
  const ids = new Set<string>()
  const ops = operations(committed)
  t.ok(ops.length >= 10, `found ${ops.length} operations`)

  for (const { path, method, op } of ops) {
    const name = `${method.toUpperCase()} ${path}`
    const route = routes.find((r) => toOpenApiPath(r.url) === path && [r.method].flat().includes(method.toUpperCase()))
    const schema = (route?.schema ?? {}) as { body?: object, params?: object, querystring?: object }
    const responses = op.responses ?? {}
    const statuses = Object.keys(responses)
    t.test(name, async (t) => {
      t.match(op.operationId, /^[a-z][A-Za-z0-9]*$/, 'operationId in camelCase')
      t.notOk(ids.has(op.operationId!), 'operationId is unique')
      ids.add(op.operationId!)
      t.ok(typeof op.summary === 'string' && op.summary.trim().length > 0, 'has a summary')
      t.ok(Array.isArray(op.tags) && op.tags.length > 0, 'has tags')
      for (const tag of op.tags ?? []) t.ok(declaredTags.has(tag), `tag ${tag} is declared at the top level`)

      // Compat routes are kept for the seeds' clients only.
      if (op.tags?.includes('compat')) t.equal(op.deprecated, true, 'compat route is deprecated')
      else t.notOk(op.deprecated, 'service API route is not deprecated')

      // Request: a body schema where the route validates one, a parameter per path template.
      if (schema.body !== undefined) {
        t.ok(op.requestBody?.content?.['application/json']?.schema, 'request body schema (application/json)')
        for (const code of ['400', '413', '415']) t.ok(statuses.includes(code), `documents ${code} (bad, too large or non-JSON body)`)
      } else {
        t.equal(op.requestBody, undefined, 'no request body where the route takes none')
      }
      for (const [, param] of path.matchAll(/\{([^}]+)\}/g)) {
        const p = op.parameters?.find((x) => x.in === 'path' && x.name === param)
        t.ok(p?.required === true && p.schema, `path parameter ${param} is documented with a schema`)
      }

      // Responses: a success, a description each, a JSON schema for all but 204.
      t.ok(statuses.some((s) => /^2\d\d$/.test(s)), 'documents a 2xx response')
      t.notOk(statuses.includes('default'), 'every status is named, no catch-all')
      for (const [status, response] of Object.entries(responses)) {
        t.ok(response.description, `${status} has a description`)
        if (status === '204') t.equal(response.content, undefined, '204 has no body')
        else if (op.tags?.includes('revocation-feed') && status === '200' && response.content?.['text/event-stream'] !== undefined) {
          t.ok(response.content['text/event-stream'].schema, '200 is an event stream, with a schema')
        } else t.ok(response.content?.['application/json']?.schema, `${status} has a JSON schema`)
      }

      // A token-protected route says so, and documents what a bad token and a down store give.
      if (op.security !== undefined) {
        const required = op.security.filter((req) => Object.keys(req).length > 0)
        t.ok(required.length > 0, 'security names a scheme')
        for (const req of required) {
          for (const scheme of Object.keys(req)) {
            t.equal(schemes[scheme]?.type, 'http', `${scheme} is declared`)
            t.equal(schemes[scheme]?.scheme, 'bearer', `${scheme} is a bearer scheme`)
          }
        }
        t.ok(statuses.includes('401'), 'documents 401')
        t.ok(statuses.includes('503'), 'documents 503 (revocation store down: fail closed)')
      }

      // @fastify/rate-limit's per-route setting: a limited route can answer 429.
      const rateLimit = (route?.config as { rateLimit?: unknown } | undefined)?.rateLimit
      if (rateLimit !== undefined && rateLimit !== false) t.ok(statuses.includes('429'), 'documents 429 (rate limited)')
    })
  }
})

// --- What the routes really answer ------------------------------------------------------------

/** Validates a response body against the schema the document gives for that status. */
function responseValidator (doc: Document) {
  const ajv = new Ajv({ strict: false, logger: false, allErrors: true })
  ajv.addSchema(doc, 'openapi.json')
  const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')
  return (path: string, method: string, status: string, body: unknown) => {
    const check = ajv.getSchema(`openapi.json#/${pointer('paths', path, method, 'responses', status, 'content', 'application/json', 'schema')}`)
    if (check === undefined) throw new Error(`no schema for ${method} ${path} ${status}`)
    return check(body) ? null : ajv.errorsText(check.errors)
  }
}

async function freshToken (app: App): Promise<string> {
  // Straight from the app's own services: one user per token, so that a probe that deletes
  // its user or logs out cannot disturb another, and no login rate limit is spent.
  const user = await app.accounts.register(uniqueName('doc'), PASSWORD, { log: app.log })
  const pair = await app.sessions.start(user.id, user.credentialVersion)
  return pair!.access_token
}

test('every status a route answers to bad or partial requests is documented, with a body that fits', async (t) => {
  const app = await build(t, { REVOCATION_FEED_TOKEN: FEED_TOKEN })
  const check = responseValidator(committed)
  const routes = await registeredRoutes()
  const big = JSON.stringify({ pad: 'x'.repeat(17 * 1024) })

  for (const { path, method, op } of operations(committed)) {
    const route = routes.find((r) => toOpenApiPath(r.url) === path && [r.method].flat().includes(method.toUpperCase()))
    const hasBody = (route?.schema as { body?: unknown } | undefined)?.body !== undefined
    const url = path.replace(/\{[^}]+\}/g, randomUUID())
    const documented = Object.keys(op.responses ?? {})

    await t.test(`${method.toUpperCase()} ${path}`, async (t) => {
      const probe = async (label: string, headers: Record<string, string>, payload?: string) => {
        const res = await app.inject({ method: method.toUpperCase() as 'GET', url, headers, payload })
        const status = String(res.statusCode)
        t.ok(documented.includes(status), `${label}: ${status} is documented (body ${res.body.slice(0, 200)})`)
        if (documented.includes(status)) {
          if (status === '204') t.equal(res.body, '', `${label}: 204 has no body`)
          else t.equal(check(path, method, status, res.json()), null, `${label}: ${status} body fits its schema`)
        }
        return res.statusCode
      }
      const json = { 'content-type': 'application/json' }
      const empty = hasBody ? '{}' : undefined
      const bodyHeaders = hasBody ? json : {}

      const anonymous = await probe('no token', bodyHeaders, empty)
      await probe('garbage token', { ...bodyHeaders, authorization: 'Bearer not-a-token' }, empty)
      const withToken = await probe('valid token', { ...bodyHeaders, authorization: `Bearer ${await freshToken(app)}` }, empty)
      // The token is what made the difference: the document must say the route takes one.
      if (anonymous === 401 && withToken !== 401) {
        t.ok(op.security?.some((req) => 'bearerAuth' in req), 'a route that reads the bearer token declares bearerAuth')
      }
      if (path.includes('{')) {
        // Path parameters out of bounds: over the schema's maxLength (400), over the router's
        // maxParamLength (414, answered before the token is read).
        const auth = { ...bodyHeaders, authorization: `Bearer ${await freshToken(app)}` }
        for (const [label, length] of [['65-character id', 65], ['201-character id', 201]] as const) {
          const long = path.replace(/\{[^}]+\}/g, 'a'.repeat(length))
          const res = await app.inject({ method: method.toUpperCase() as 'GET', url: long, headers: auth, payload: empty })
          const status = String(res.statusCode)
          t.ok(documented.includes(status), `${label}: ${status} is documented`)
          if (documented.includes(status)) t.equal(check(path, method, status, res.json()), null, `${label}: ${status} body fits its schema`)
        }
      }
      if (hasBody) {
        const auth = { authorization: `Bearer ${await freshToken(app)}` }
        t.equal(await probe('malformed JSON', { ...json, ...auth }, '{'), 400)
        // (text/plain has a parser in Fastify; a type with none is what must get 415)
        t.equal(await probe('XML body', { 'content-type': 'application/xml', ...auth }, '<a/>'), 415)
        t.equal(await probe('17 KiB body', { ...json, ...auth }, big), 413)
      }
    })
  }
})

// --- What a reader and a generator see --------------------------------------------------------
// (on the document the app serves now, so that these hold whatever the committed file says)

/** Every schema object in the document, with where it is. */
function * schemas (node: unknown, where = '#'): Generator<[string, Record<string, unknown>]> {
  if (node === null || typeof node !== 'object') return
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) yield * schemas(item, `${where}/${i}`)
    return
  }
  const obj = node as Record<string, unknown>
  if (typeof obj.type === 'string' || Array.isArray(obj.anyOf) || Array.isArray(obj.oneOf) || Array.isArray(obj.enum)) yield [where, obj]
  for (const [key, value] of Object.entries(obj)) yield * schemas(value, `${where}/${key}`)
}

test('Swagger UI lists operations in the order a user meets them', async (t) => {
  const served = await servedOpenApi() as unknown as Document
  const order = (doc: Document, tag: string) => operations(doc).filter(({ op }) => op.tags?.includes(tag)).map(({ op }) => op.operationId)
  t.same(order(served, 'auth'), ['register', 'login', 'loginMfa', 'refresh', 'logout', 'introspect', 'resetPassword'])
  t.same(order(served, 'users'), [
    'getMe', 'updateMe', 'deleteMe', 'listSessions', 'revokeSession', 'listSecurityEvents', 'enrolTotp', 'disableTotp', 'confirmTotp'
  ])
  // (the methods of one path stay together)
  t.same(order(served, 'admin'), [
    'adminListUsers', 'adminGetUser', 'adminDeleteUser', 'adminDisableUser', 'adminEnableUser', 'adminLogoutUser', 'adminRemoveMfa',
    'adminIssuePasswordReset'
  ])
  t.same(order(served, 'compat').slice(0, 4), ['compatTemplateRegister', 'compatTemplateLogin', 'compatTemplateProtected', 'compatTemplateLogout'])
  t.same((served.tags ?? []).map((tag) => tag.name).slice(0, 4), ['auth', 'users', 'admin', 'health'], 'tags in that order too')
  // npm run openapi keeps that order in the file.
  const written = JSON.parse(renderOpenApi(served)) as Document
  t.same(order(written, 'auth'), order(served, 'auth'), 'openapi.json keeps the order of the paths')
  t.same(Object.keys(written.paths['/users/me']), ['get', 'patch', 'delete'], 'and of the methods of a path')
})

test('every response says what it means and shows a real example', async (t) => {
  const served = await servedOpenApi() as unknown as Document & { components: { schemas: Record<string, unknown> } }
  const check = responseValidator(served)
  for (const { path, method, op } of operations(served)) {
    for (const [status, response] of Object.entries(op.responses ?? {})) {
      const name = `${method.toUpperCase()} ${path} ${status}`
      t.ok(response.description && response.description !== 'Default Response', `${name}: a description of its own`)
      const media = response.content?.['application/json'] as { schema?: { $ref?: string }, example?: Record<string, unknown> } | undefined
      if (Number(status) >= 400 && media !== undefined && media.schema?.$ref !== undefined) {
        t.ok(media.example, `${name}: an example body`)
        t.equal(check(path, method, status, media.example), null, `${name}: the example fits the schema`)
        if (media.schema.$ref.endsWith('/ErrorResponse')) t.equal(media.example?.statusCode, Number(status), `${name}: its statusCode is ${status}`)
      }
      if (status === '429' || (status === '503' && ['register', 'login', 'refresh'].includes(op.operationId!))) {
        const headers = (response as { headers?: Record<string, { schema?: { type?: string } }> }).headers
        t.equal(headers?.['Retry-After']?.schema?.type, 'integer', `${name}: Retry-After is documented`)
      }
    }
  }
  // No placeholder "string" in Swagger UI: every string of a named schema has an example (or its values).
  for (const [where, schema] of schemas(served.components.schemas, '#/components/schemas')) {
    if (schema.type === 'string' && !('enum' in schema)) t.ok('example' in schema, `${where}: an example`)
    if (schema.type === 'integer' && where.endsWith('/statusCode')) t.not(schema.example, 599, `${where}: not the maximum`)
  }
})

test('generators get named types: request bodies are components, enums are enums, optional bodies are optional', async (t) => {
  const served = await servedOpenApi() as unknown as Document & { servers?: Array<{ url: string }> }
  t.ok((served.servers ?? []).length > 0, 'a servers entry')
  for (const { path, method, op } of operations(served)) {
    if (op.requestBody === undefined) continue
    const schema = op.requestBody.content?.['application/json']?.schema as { $ref?: string }
    t.match(schema.$ref, /^#\/components\/schemas\/[A-Z]/, `${method.toUpperCase()} ${path}: its body is a named component`)
    const optional = ['logout', 'compatDemoValidateToken', 'compatDemoLogout'].includes(op.operationId!)
    t.equal((op.requestBody as { required?: boolean }).required, !optional, `${method.toUpperCase()} ${path}: body ${optional ? 'optional' : 'required'}`)
  }
  for (const [where, schema] of schemas(served)) {
    for (const key of ['anyOf', 'oneOf'] as const) {
      const branches = schema[key] as Array<Record<string, unknown>> | undefined
      if (branches === undefined) continue
      const constants = branches.every((b) => 'const' in b || (Array.isArray(b.enum) && b.enum.length === 1))
      t.notOk(constants, `${where}: ${key} of single values (an enum would do)`)
    }
  }
})

test('the rules that lived in prose are in the schemas: PATCH /users/me and the common-password rule', async (t) => {
  const served = await servedOpenApi() as unknown as Document & { components: { schemas: Record<string, { description?: string }> } }
  const ajv = new Ajv({ strict: false })
  ajv.addSchema(served, 'doc')
  const patch = ajv.compile({ $ref: 'doc#/components/schemas/UserPatch' })
  const cases: Array<[object, boolean]> = [
    [{}, false],
    [{ current_password: PASSWORD }, false],
    [{ password: 'a new long passphrase' }, false],
    [{ username: 'alice', password: 'a new long passphrase' }, false],
    [{ password: 'a new long passphrase', current_password: PASSWORD }, true],
    [{ username: 'alice' }, true],
    [{ username: 'alice', current_password: PASSWORD }, true]
  ]
  for (const [body, valid] of cases) t.equal(patch(body), valid, `${JSON.stringify(body)} is ${valid ? 'valid' : 'refused'} by the document`)
  const updateMe = served.paths['/users/me'].patch
  const description = updateMe.responses?.['400']?.description ?? ''
  for (const rule of ['Nothing to change', 'current_password is required', 'too common']) t.match(description, rule, `400 of PATCH /users/me says: ${rule}`)
  t.match(served.paths['/auth/register'].post.responses?.['400']?.description, 'too common', '400 of register names the common-password rule')
  const password = (served.components.schemas.Credentials as { properties: Record<string, { description?: string }> }).properties.password
  t.match(password.description, /most common passwords/, 'and so does the password schema')
})
