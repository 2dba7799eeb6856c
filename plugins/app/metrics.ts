import cluster from 'node:cluster'
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Counter, Histogram } from 'prom-client'
import { createMetrics, METRICS_REQUEST, type ServiceMetrics } from '../../src/metrics'
import { errorBody } from '../../src/http-errors'
import { isDatabaseUnavailable } from '../../src/db/errors'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics
    /** the Prometheus text of this process, or of every worker when WORKERS > 1 */
    metricsText (): Promise<string>
  }
}

/** Asks the cluster primary for the aggregate (prom-client's AggregatorRegistry, in server.ts). */
function fromPrimary (): Promise<string> {
  return new Promise((resolve, reject) => {
    const id = randomUUID()
    const timer = setTimeout(() => {
      process.off('message', onReply)
      reject(new Error('metrics: the primary did not answer'))
    }, 5000)
    const onReply = (msg: { type?: string, id?: string, text?: string, error?: string }) => {
      if (msg?.type !== METRICS_REQUEST || msg.id !== id) return
      clearTimeout(timer)
      process.off('message', onReply)
      if (msg.text !== undefined) resolve(msg.text)
      else reject(new Error(msg.error ?? 'metrics: no answer'))
    }
    process.on('message', onReply)
    process.send!({ type: METRICS_REQUEST, id })
  })
}

/**
 * Prometheus metrics: a registry per app (src/metrics.ts), a request histogram fed by one
 * onResponse hook, and GET /metrics on the service's port only when METRICS_TOKEN is set
 * (bearer, compared in constant time). METRICS_PORT serves them on a port of their own
 * (src/server.ts). Not in the OpenAPI document: it is for operators, not API clients.
 */
export default fp(async function metrics (fastify) {
  const { workers, metrics: options } = fastify.config
  // The plugins that own state read at scrape time give their sources (service.setSource).
  const service = createMetrics()
  fastify.decorate('metrics', service)
  const clustered = workers > 1 && cluster.isWorker
  if (clustered) {
    // A worker answers the primary's requests for its metrics (constructing one adds the listener).
    const { AggregatorRegistry } = await import('prom-client')
    // eslint-disable-next-line no-new -- constructing one is what adds the worker's listener
    new AggregatorRegistry()
    AggregatorRegistry.setRegistries([service.registry])
  }
  fastify.decorate('metricsText', async () => clustered ? await fromPrimary() : await service.registry.metrics())

  // One child per method, route pattern and status, found with one Map look-up: bumping it
  // costs a bucket search, not a label hash (measured in bench/README.md).
  type Children = { duration: ReturnType<Histogram['labels']>, count: ReturnType<Counter['labels']> }
  const children = new Map<string, Children>()
  // Only when someone can read them (METRICS_TOKEN or METRICS_PORT): the hook costs protected
  // reads about a tenth of their throughput. Measured with 20-24 alternating autocannon windows
  // of GET /users/me, main-thread CPU per request, medians: 37.6 vs 32.7 us and 51.1 vs
  // 43.3 us with and without it; a hand-kept histogram instead of prom-client's did no better
  // (40.8 vs 41.2 us, 37.7 without the hook): the cost is the hook, not the library.
  const readable = options.token !== undefined || options.port !== undefined
  if (readable) {
    fastify.addHook('onResponse', function (request, reply, done) {
      // unmatched URLs share one label, so a scan of random paths cannot grow the series
      const route = request.routeOptions.url ?? 'unmatched'
      const key = `${request.method} ${reply.statusCode} ${route}`
      let child = children.get(key)
      if (child === undefined) {
        const labels = [request.method, route, String(reply.statusCode)]
        child = { duration: service.requestDuration.labels(...labels), count: service.requests.labels(...labels) }
        children.set(key, child)
      }
      child.duration.observe(reply.elapsedTime / 1000)
      child.count.inc()
      done()
    })
  }

  // Errors only: nothing on the hot path.
  fastify.addHook('onError', function (_request, _reply, error, done) {
    if (isDatabaseUnavailable(error)) service.databaseErrors.inc()
    done()
  })

  if (options.token === undefined) return
  const expected = createHash('sha256').update(options.token).digest()
  const authorised = (request: FastifyRequest) => {
    const header = request.headers.authorization ?? ''
    const given = header.toLowerCase().startsWith('bearer ') ? header.slice(7) : ''
    // Hashes of equal length: constant time whatever the length of what was sent.
    return timingSafeEqual(createHash('sha256').update(given).digest(), expected)
  }
  fastify.get('/metrics', { schema: { hide: true } }, async (request: FastifyRequest, reply: FastifyReply) => {
    if (!authorised(request)) {
      reply.header('www-authenticate', 'Bearer')
      return await reply.code(401).send(errorBody(401, 'Metrics need Authorization: Bearer <METRICS_TOKEN>'))
    }
    let text: string
    try {
      text = await fastify.metricsText()
    } catch {
      // With WORKERS > 1 the primary gathers every worker's metrics within prom-client's fixed
      // 5 s: a worker too busy to answer makes it a 503 (try the next scrape), as on METRICS_PORT.
      const body = errorBody(503, 'Metrics unavailable: a worker did not answer in time')
      return await reply.code(503).header('retry-after', '1').send(body)
    }
    return await reply.header('cache-control', 'no-store').type(service.registry.contentType).send(text)
  })
}, { name: 'metrics', dependencies: ['config', 'http'] })
