'use strict'

// A downstream API that trusts the auth service's access tokens without calling it per
// request. Configure it by environment (see ../README.md) and run: node example/server.js
//
// The end-to-end tests run this very file, installed from the packed tarball.

const Fastify = require('fastify')
const { verifier } = require('@auth-service/fastify-verifier')

let promClient = null
try {
  promClient = require('prom-client')
} catch {
  // prom-client is optional: without it there is no /metrics.
}

function env (name, fallback) {
  const value = process.env[name] ?? fallback
  if (value === undefined || value === '') {
    console.error(`missing environment variable ${name}`)
    process.exit(2)
  }
  return value
}

async function main () {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
  const registry = promClient ? new promClient.Registry() : undefined

  await app.register(verifier, {
    issuer: env('AUTH_ISSUER', 'auth-service'),
    audience: env('AUTH_AUDIENCE', 'auth-service'),
    jwksUrl: env('AUTH_JWKS_URL'),
    // Every instance of the auth service serves the feed: list them all, the plugin fails over.
    feedUrl: env('AUTH_FEED_URLS').split(','),
    feedToken: env('REVOCATION_FEED_TOKEN'),
    staleAfter: Number(env('STALE_AFTER_MS', '3000')),
    registry
  })

  // Protected (the default) and fail-closed while the blocklist is stale: 503 + Retry-After.
  app.get('/me', async (request) => ({ sub: request.auth.sub, sid: request.auth.sid }))

  // Protected, but served while stale: a read where availability beats a second of staleness.
  app.get('/catalog', { config: { verifier: { onStale: 'open' } } }, async (request) => ({
    items: ['tea', 'coffee'],
    for: request.auth.sub
  }))

  // Not protected.
  app.get('/health', { config: { verifier: false } }, async () => ({ ok: true }))
  app.get('/verifier/status', { config: { verifier: false } }, async () => app.verifier.status())
  if (registry) {
    app.get('/metrics', { config: { verifier: false } }, async (_request, reply) => {
      reply.type(registry.contentType)
      return registry.metrics()
    })
  }

  await app.listen({ port: Number(env('PORT', '4000')), host: env('HOST', '127.0.0.1') })
}

main().catch((err) => {
  console.error(err.message)
  process.exit(1)
})
