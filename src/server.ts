import cluster from 'node:cluster'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { AggregatorRegistry } from 'prom-client'
import { buildApp } from './app'
import { METRICS_REQUEST } from './metrics'
import { ConfigError, loadConfig, type Config } from './config'
import { loggerOptions } from './logger'

/** METRICS_PORT: GET /metrics on a port of its own, without a token (keep that port private). */
async function serveMetrics (config: Config, metricsText: () => Promise<string>): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    metricsText().then((text) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' }).end(text)
    }, () => { res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable\n') })
  })
  server.listen(config.metrics.port, config.host)
  await once(server, 'listening')
  return server
}

/** Reads .env (if present) without overriding the real environment. */
function loadDotEnv () {
  try {
    process.loadEnvFile('.env')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

async function serve (config: Config) {
  const app = await buildApp(config, {
    logger: loggerOptions(config.logLevel),
    connectionTimeout: 10_000,
    keepAliveTimeout: 72_000,
    requestTimeout: 15_000
  })
  const clustered = config.workers > 1
  const metricsServer = config.metrics.port !== undefined && !clustered ? await serveMetrics(config, app.metricsText) : null
  if (config.jwt.ephemeralSecret) {
    app.log.warn('JWT_SECRET is not set: a random key was made for this process; tokens will not survive a restart')
  }

  // Graceful shutdown: stop accepting, let in-flight requests finish, close the database
  // and Redis (onClose hooks), then exit 0. A second signal, or 10 s, forces the exit.
  let closing = false
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1)
    closing = true
    app.log.info({ signal, drainMs: config.shutdownDrainMs }, 'shutting down')
    const force = setTimeout(() => process.exit(1), 10_000 + config.shutdownDrainMs).unref()
    // Readiness answers 503 first, so a load balancer stops sending before the listener closes.
    app.lifecycle.draining = true
    metricsServer?.close()
    setTimeout(() => {
      // A kept-alive connection whose request finishes during the shutdown would otherwise
      // hold the server open until its keep-alive timeout: drop each one as soon as it is idle.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50).unref()
      app.close().then(() => {
        clearInterval(sweep)
        clearTimeout(force)
        process.exit(0)
      }, (err) => {
        app.log.error({ err }, 'error during shutdown')
        process.exit(1)
      })
    }, config.shutdownDrainMs)
  }
  process.once('SIGTERM', shutdown)
  process.once('SIGINT', shutdown)

  await app.listen({ port: config.port, host: config.host })
}

async function main () {
  loadDotEnv()
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(1)
    }
    throw err
  }

  // WORKERS=N: N processes share the port (node:cluster); the blocklist is in Redis then.
  if (config.workers > 1 && cluster.isPrimary) {
    // Metrics of every worker, added up (prom-client's AggregatorRegistry asks each one):
    // on METRICS_PORT here, and for a worker whose GET /metrics asked on its behalf.
    const aggregator = new AggregatorRegistry()
    cluster.on('message', (worker, msg: { type?: string, id?: string }) => {
      if (msg?.type !== METRICS_REQUEST) return
      aggregator.clusterMetrics().then(
        (text) => worker.send({ type: METRICS_REQUEST, id: msg.id, text }),
        (err: Error) => worker.send({ type: METRICS_REQUEST, id: msg.id, error: err.message })
      )
    })
    const metricsServer = config.metrics.port === undefined ? null : await serveMetrics(config, async () => await aggregator.clusterMetrics())
    for (let i = 0; i < config.workers; i++) cluster.fork()
    // A worker that dies is replaced, unless they keep dying (then the primary gives up,
    // so that the supervisor above it sees the failure).
    let stopping = false
    const recentDeaths: number[] = []
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) return
      console.error(`worker ${worker.process.pid} exited (${signal ?? code}); starting another`)
      const now = Date.now()
      recentDeaths.push(now)
      while (recentDeaths.length > 0 && recentDeaths[0] < now - 30_000) recentDeaths.shift()
      if (recentDeaths.length > 5) {
        console.error('workers keep exiting; giving up')
        process.exit(1)
      }
      cluster.fork()
    })
    const stop = (signal: NodeJS.Signals) => {
      stopping = true
      metricsServer?.close() // the primary exits once its workers have
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal)
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    return
  }
  await serve(config)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
