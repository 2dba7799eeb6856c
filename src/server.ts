import cluster from 'node:cluster'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { AggregatorRegistry } from 'prom-client'
import { buildApp } from './app'
import { METRICS_REQUEST } from './metrics'
import { ConfigError, loadConfig, type Config } from './config'
import { StartError } from './errors'
import { closeOnlyIdleSockets } from './idle-sockets'
import { loggerOptions, prettyLogs } from './logger'

/**
 * METRICS_PORT: GET /metrics on a port of its own, without a token, on METRICS_HOST (loopback
 * by default, not HOST: with HOST=0.0.0.0 the unauthenticated metrics must not follow).
 */
async function serveMetrics (config: Config, metricsText: () => Promise<string>): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    metricsText().then((text) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' })
        .end(text)
    }, () => { res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable\n') })
  })
  server.listen(config.metrics.port, config.metrics.host)
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
    logger: loggerOptions(config.logLevel, { pretty: prettyLogs(config.production) }),
    connectionTimeout: 10_000,
    keepAliveTimeout: 72_000,
    requestTimeout: 15_000
  })
  closeOnlyIdleSockets(app.server)
  const clustered = config.workers > 1
  const metricsServer = config.metrics.port !== undefined && !clustered
    ? await serveMetrics(config, app.metricsText)
    : null
  if (config.jwt.ephemeralSecret) {
    app.log.warn(EPHEMERAL_SECRET_WARNING)
  }
  if (config.jwt.keysFileWarning !== undefined) {
    app.log.warn(config.jwt.keysFileWarning)
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

  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    const hint = listenHint(err as NodeJS.ErrnoException, config)
    if (hint === undefined) throw err
    await app.close().catch(() => {})
    console.error(hint)
    process.exit(1)
  }  // What an operator checks first: which database, which revocation store, which algorithm.
  const started = startedWith(config)
  app.log.info({ event: 'service.started', ...started },
    `auth-service started: database ${started.database}, revocation store ${started.revocationStore}, ` +
    `tokens ${started.alg}`)
}

/** The start log's summary. Never a URL: DATABASE_URL and REDIS_URL may hold passwords. */
function startedWith (config: Pick<Config, 'database' | 'redisUrl' | 'jwt' | 'workers'>) {
  return {
    database: config.database.kind === 'postgres' ? 'postgres' : 'sqlite',
    revocationStore: config.redisUrl === undefined ? 'memory' : 'redis',
    alg: config.jwt.alg,
    workers: config.workers
  }
}

/**
 * Said without a stack trace when the address cannot be had: what went wrong and which
 * variable to change. undefined for any other failure (that one is a bug: its stack helps).
 */
function listenHint (err: NodeJS.ErrnoException, config: Pick<Config, 'host' | 'port'>): string | undefined {
  const where = `${config.host}:${config.port}`
  switch (err.code) {
    case 'EADDRINUSE':
      return `Cannot listen on ${where}: the port is already in use (another instance?). ` +
        'Stop it, or set PORT to a free port.'
    case 'EACCES':
      return `Cannot listen on ${where}: permission denied (ports below 1024 need privileges). ` +
        'Set PORT to 1024 or above.'
    case 'EADDRNOTAVAIL':
      return `Cannot listen on ${where}: ${config.host} is not an address of this machine. ` +
        'Set HOST (127.0.0.1 or 0.0.0.0).'
    default:
      return undefined
  }
}

/**
 * Without JWT_SECRET: what survives a restart and what does not. Access tokens are signed with
 * the key, so they die with it; refresh tokens are opaque and live in the database, so they
 * survive and get new access tokens from POST /auth/refresh.
 */
const EPHEMERAL_SECRET_WARNING = 'JWT_SECRET is not set: a random key was made for this process. Access tokens ' +
  'will stop working when it restarts (refresh tokens keep working: clients get new access tokens from ' +
  'POST /auth/refresh). Set JWT_SECRET (32+ bytes) to keep access tokens valid across restarts.'

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
    const metricsServer = config.metrics.port === undefined
      ? null
      : await serveMetrics(config, async () => await aggregator.clusterMetrics())
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
  // A start that configuration must fix is one line naming the variable; anything else is a
  // bug, and its stack helps.
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof StartError) {
      console.error(e.message)
      process.exit(1)
    }
  }
  console.error(err)
  process.exit(1)
})
