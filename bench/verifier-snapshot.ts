/**
 * The verifier plugin holding a big blocklist: a downstream app (the built package,
 * packages/verifier/dist, in a process of its own) loads a snapshot of N live entries
 * (default 1,000,000: a fleet at 1,000 logouts/s with 15-minute tokens holds about 900,000)
 * from a feed served by this process. Reports the load time (register() start to ready, as
 * the app sees it, and the snapshot's size on the wire) and the app's RSS, against the same
 * app with an empty snapshot.
 *
 *   npx tsx bench/verifier-snapshot.ts [--entries 1000000]
 */
import { execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { freePort, rssMb, startChild, stopAll } from './lib/procs'

const PACKAGE = join(__dirname, '..', 'packages', 'verifier')
const TOKEN = 'snapshot-bench-' + randomUUID()

// The downstream app: plain Node on the compiled package, no loader, so RSS is the app's own.
const APP = `
const Fastify = require('fastify')
const { verifier } = require(${JSON.stringify(join(PACKAGE, 'dist', 'index.js'))})
const app = Fastify({ pluginTimeout: 130000 })
const started = process.hrtime.bigint()
app.register(verifier, { issuer: 'i', audience: 'a', jwksUrl: process.env.FEED_URL + '/jwks', feedUrl: process.env.FEED_URL + '/stream',
  feedToken: process.env.TOKEN, startTimeout: 120000 })
app.get('/status', { config: { verifier: false } }, async () => {
  global.gc()
  return { ...app.verifier.status(), rssMb: process.memoryUsage().rss / 1048576, heapMb: process.memoryUsage().heapUsed / 1048576 }
})
app.ready().then(() => {
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  return app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' }).then(() => console.log(JSON.stringify({ readyMs: ms })))
}).catch((err) => { console.error(err.message); process.exit(1) })
`

async function measure (entries: number) {
  const now = Date.now()
  const list = Array.from({ length: entries }, (_, i) => ({ kind: i % 3 === 0 ? 'jti' : 'sid', id: randomUUID(), until: now + 900_000 }))
  const snapshot = `event: snapshot\nid: ${entries}\ndata: ${JSON.stringify({ position: entries, entries: list })}\n\n`
  const server = createServer((req, res) => {
    if (req.url === '/stream' && req.headers.authorization === `Bearer ${TOKEN}`) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(snapshot)
      const beat = setInterval(() => res.write(`event: heartbeat\ndata: {"position":${entries},"time":${Date.now()}}\n\n`), 1000)
      res.on('close', () => clearInterval(beat))
    } else {
      res.writeHead(404).end()
    }
  })
  const feedPort = await freePort()
  await new Promise<void>((resolve) => server.listen(feedPort, '127.0.0.1', resolve))
  const port = await freePort()
  const child = startChild('downstream', process.execPath, ['--expose-gc', '-e', APP], {
    PATH: process.env.PATH, NODE_PATH: join(__dirname, '..', 'node_modules'), PORT: String(port), FEED_URL: `http://127.0.0.1:${feedPort}`, TOKEN
  })
  try {
    const deadline = Date.now() + 180_000
    while (!child.output().includes('readyMs')) {
      if (child.exited() || Date.now() > deadline) throw new Error(`downstream failed:\n${child.output()}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const { readyMs } = JSON.parse(child.output().split('\n').find((l) => l.includes('readyMs'))!)
    const peakRss = rssMb(child.pid)
    const status = await (await fetch(`http://127.0.0.1:${port}/status`)).json() as { entries: number, rssMb: number, heapMb: number }
    return { entries: status.entries, wireMb: Buffer.byteLength(snapshot) / 1048576, readyMs, rssAfterLoadMb: peakRss, rssAfterGcMb: status.rssMb, heapMb: status.heapMb }
  } finally {
    await child.stop()
    server.closeAllConnections()
    server.close()
  }
}

async function main () {
  const { values } = parseArgs({ options: { entries: { type: 'string', default: '1000000' } } })
  execFileSync('npm', ['run', 'build'], { cwd: PACKAGE, stdio: 'ignore' })
  const empty = await measure(0)
  const big = await measure(Number(values.entries))
  const f = (x: number) => x.toFixed(1)
  console.log(`empty snapshot:        ready in ${f(empty.readyMs)} ms, RSS ${f(empty.rssAfterGcMb)} MB after GC`)
  console.log(`${big.entries.toLocaleString('en')} entries (${f(big.wireMb)} MB on the wire): ready in ${f(big.readyMs)} ms, ` +
    `RSS ${f(big.rssAfterLoadMb ?? 0)} MB just after loading, ${f(big.rssAfterGcMb)} MB after GC (heap ${f(big.heapMb)} MB); ` +
    `+${f(big.rssAfterGcMb - empty.rssAfterGcMb)} MB over the empty app`)
}

main().catch(async (err) => { console.error(err); await stopAll(); process.exit(1) })
