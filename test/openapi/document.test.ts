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
  // A different JWT secret, bcrypt cost and database: none of it may reach the document.
  const served = await servedOpenApi(testEnv())
  t.same(served, committed, 'GET /docs/json differs from openapi.json')
  const text = JSON.stringify(served)
  t.notOk(text.includes(TEST_SECRET), 'the JWT secret does not appear in the document')
  t.notOk(text.includes(Buffer.from(TEST_SECRET).toString('base64')), 'nor does its base64 form')
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
        else t.ok(response.content?.['application/json']?.schema, `${status} has a JSON schema`)
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
  const app = await build(t)
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
