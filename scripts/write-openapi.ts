/**
 * `npm run openapi`: writes the OpenAPI document the app serves at /docs/json to
 * openapi.json at the repository root. test/openapi/document.test.ts fails when the
 * committed file differs from what the app serves, so rerun this after changing a schema.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp } from '../src/app'
import { loadConfig } from '../src/config'

export const OPENAPI_FILE = join(__dirname, '..', 'openapi.json')

/**
 * The fixed, non-secret environment the document is written from: every surface on
 * (compat routes, rate limits, the revocation feed), defaults otherwise. No JWT_SECRET: the app makes a random
 * one, which never reaches the document (the drift test builds with another secret).
 */
export const OPENAPI_ENV: Readonly<Record<string, string>> = {
  DATABASE_URL: ':memory:',
  COMPAT_ROUTES: 'true',
  RATE_LIMITS: 'on',
  LOG_LEVEL: 'silent',
  // a placeholder that turns the revocation feed on; it never reaches the document
  REVOCATION_FEED_TOKEN: 'openapi-document-placeholder-feed-token'
}

/** The document as the app serves it at /docs/json. */
export async function servedOpenApi (env: Record<string, string | undefined> = OPENAPI_ENV): Promise<Record<string, unknown>> {
  const app = await buildApp(loadConfig(env))
  try {
    const res = await app.inject({ method: 'GET', url: '/docs/json' })
    if (res.statusCode !== 200) throw new Error(`GET /docs/json answered ${res.statusCode}: ${res.body}`)
    return res.json()
  } finally {
    await app.close()
  }
}

// The document's own sections read best in the order the specification lists them.
const TOP_LEVEL = ['openapi', 'info', 'servers', 'tags', 'security', 'paths', 'components']
const rank = (key: string) => (TOP_LEVEL.includes(key) ? TOP_LEVEL.indexOf(key) : TOP_LEVEL.length)
const byTopLevelOrder = (a: string, b: string) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)

/**
 * Object keys sorted, so that the file does not depend on the order in which autoload
 * happened to register routes. Arrays keep their order (it is meaningful), and so do three
 * kinds of object whose order is written in code: the members of a schema's `properties` (the
 * order readers and generated types show), the paths and the methods of each path (the order
 * Swagger UI lists operations in, which plugins/external/swagger.ts sets).
 */
function sortKeys (value: unknown, path: string[] = []): unknown {
  if (Array.isArray(value)) return value.map((item) => sortKeys(item, [...path, '[]']))
  if (value === null || typeof value !== 'object') return value
  const keys = Object.keys(value)
  const inPaths = path[0] === 'paths' && path.length <= 2 // the paths, and the methods of each
  if (path.at(-1) !== 'properties' && !inPaths) keys.sort(path.length === 0 ? byTopLevelOrder : undefined)
  const out: Record<string, unknown> = {}
  for (const key of keys) out[key] = sortKeys((value as Record<string, unknown>)[key], [...path, key])
  return out
}

/** The exact text of openapi.json: stable key order, two-space indent, final newline. */
export function renderOpenApi (document: unknown): string {
  return JSON.stringify(sortKeys(document), null, 2) + '\n'
}

async function main () {
  const text = renderOpenApi(await servedOpenApi())
  writeFileSync(OPENAPI_FILE, text)
  const paths = Object.keys((JSON.parse(text) as { paths: object }).paths).length
  process.stdout.write(`wrote ${OPENAPI_FILE} (${paths} paths)\n`)
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  })
}
