import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

declare module 'fastify' {
  interface FastifySchema {
    /** The route validates a body but accepts none: the document marks its requestBody not required. */
    'x-optional-body'?: boolean
  }
}

const TAGS = [
  {
    name: 'auth',
    description: 'register, login (with its two-factor step), refresh, logout, introspection, password reset'
  },
  { name: 'users', description: 'the current user, their sessions and two-factor authentication' },
  { name: 'admin', description: 'accounts, for users holding the admin role' },
  { name: 'health', description: 'liveness, readiness and dependencies' },
  { name: 'keys', description: 'public keys that verify access tokens' },
  { name: 'about', description: 'where the documentation is' },
  { name: 'compat', description: 'routes of the two Flask services this one replaces (deprecated)' },
  {
    name: 'revocation-feed',
    description: 'for services that verify access tokens themselves: revocations as they commit (REVOCATION_FEED_TOKEN)'
  }
]

/**
 * Operations in the order a user meets them (Swagger UI lists them in document order, by tag):
 * an account, a session, its use, its end. Operations not listed follow, by path.
 */
const OPERATION_ORDER = [
  'register', 'login', 'loginMfa', 'refresh', 'logout', 'introspect', 'resetPassword',
  'getMe', 'updateMe', 'deleteMe', 'listSessions', 'revokeSession', 'listSecurityEvents',
  'enrolTotp', 'confirmTotp', 'disableTotp',
  'adminListUsers', 'adminGetUser', 'adminDisableUser', 'adminEnableUser', 'adminLogoutUser', 'adminRemoveMfa',
  'adminIssuePasswordReset', 'adminDeleteUser',
  'health', 'healthLive', 'healthReady', 'jwks', 'root',
  'compatTemplateRegister', 'compatTemplateLogin', 'compatTemplateProtected', 'compatTemplateLogout',
  'compatDemoCreateUser', 'compatDemoAuthenticateUser', 'compatDemoValidateToken',
  'compatDemoGetUser', 'compatDemoUpdateUser', 'compatDemoDeleteUser', 'compatDemoLogout'
]
const METHOD_ORDER = ['get', 'post', 'put', 'patch', 'delete', 'options', 'head', 'trace']

interface Operation { operationId?: string, requestBody?: { required?: boolean }, 'x-optional-body'?: boolean }
type PathItem = Record<string, Operation>
interface Document { paths?: Record<string, PathItem> }

const rankOf = (op: Operation | undefined) => {
  const i = OPERATION_ORDER.indexOf(op?.operationId ?? '')
  return i === -1 ? OPERATION_ORDER.length : i
}

/**
 * JSON Schema's `examples: [...]` as OpenAPI 3.0's `example`, in schemas @fastify/swagger does
 * not convert (the branches of an anyOf). A Media Type's `examples` is a map, never an array.
 */
function exampleOf (node: unknown): void {
  if (node === null || typeof node !== 'object') return
  if (Array.isArray(node)) {
    for (const item of node) exampleOf(item)
    return
  }
  const schema = node as Record<string, unknown>
  if (Array.isArray(schema.examples)) {
    if (!('example' in schema)) schema.example = schema.examples[0]
    delete schema.examples
  }
  for (const value of Object.values(schema)) exampleOf(value)
}

/**
 * The finishing touches @fastify/swagger has no option for: paths and methods in the order
 * above, requestBody.required false where the route accepts no body (it always writes true),
 * and every schema example in OpenAPI 3.0's form.
 */
function finish (document: Document): void {
  exampleOf(document)
  const items = Object.entries(document.paths ?? {}).map(([path, item]) => {
    const ops = item as PathItem
    const methods = Object.keys(ops).sort((a, b) => {
      const known = METHOD_ORDER.includes(a) && METHOD_ORDER.includes(b)
      return known ? rankOf(ops[a]) - rankOf(ops[b]) || METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b) : 0
    })
    const sorted: PathItem = {}
    for (const method of methods) {
      const op = ops[method]
      if (op?.['x-optional-body'] === true) {
        delete op['x-optional-body']
        if (op.requestBody !== undefined) op.requestBody.required = false
      }
      sorted[method] = op
    }
    const rank = Math.min(...methods.map((m) => (METHOD_ORDER.includes(m) ? rankOf(ops[m]) : OPERATION_ORDER.length)))
    return { path, item: sorted, rank }
  })
  items.sort((a, b) => a.rank - b.rank || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  document.paths = Object.fromEntries(items.map(({ path, item }) => [path, item]))
}

// The OpenAPI 3 document (/docs/json) is built from the route schemas; /docs serves Swagger UI.
export default fp(async function openapi (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'auth-service',
        description: 'Authentication microservice: accounts, short-lived JWT access tokens, rotating refresh tokens, ' +
          'sessions and revocation. The rules behind every answer: docs/api.md.',
        version: '0.1.0'
      },
      servers: [
        { url: '/', description: 'the instance serving this document' },
        { url: 'http://127.0.0.1:3000', description: 'a local `npm start` (HOST and PORT defaults)' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          revocationFeedToken: { type: 'http', scheme: 'bearer', description: 'REVOCATION_FEED_TOKEN' }
        }
      },
      tags: TAGS
    },
    refResolver: {
      // components are named after the schemas' $id
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`)
    },
    transformObject: (documents) => {
      if (!('openapiObject' in documents)) return documents.swaggerObject
      finish(documents.openapiObject as Document)
      return documents.openapiObject
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'openapi', dependencies: ['config'] })
