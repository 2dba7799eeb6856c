import t from 'tap'
import { freePort, startServer } from '../helper'

// Issue 15, finding 7: METRICS_PORT serves the metrics without a token, so it must not
// follow HOST onto every interface. Linux routes all of 127/8 to the loopback interface:
// a socket on 0.0.0.0 answers 127.0.0.2, one on 127.0.0.1 does not.

const reach = async (url: string) => await fetch(url).then((res) => res.status, (err: { cause?: { code?: string } }) => err.cause?.code ?? 'error')

t.test('HOST=0.0.0.0 with METRICS_PORT: the metrics listen on loopback only', async (t) => {
  const metricsPort = await freePort()
  const server = await startServer(t, { HOST: '0.0.0.0', METRICS_PORT: String(metricsPort) })
  t.equal(await reach(`http://127.0.0.2:${server.port}/health`), 200, 'the service is on every interface, as HOST says')
  t.equal(await reach(`http://127.0.0.1:${metricsPort}/metrics`), 200, 'the metrics on 127.0.0.1')
  t.equal(await reach(`http://127.0.0.2:${metricsPort}/metrics`), 'ECONNREFUSED', 'and nowhere else')
})

t.test('METRICS_HOST chooses where the metrics listen', async (t) => {
  const metricsPort = await freePort()
  const server = await startServer(t, { METRICS_HOST: '127.0.0.2', METRICS_PORT: String(metricsPort) })
  t.equal(await reach(`http://127.0.0.2:${metricsPort}/metrics`), 200)
  t.equal(await reach(`http://127.0.0.1:${metricsPort}/metrics`), 'ECONNREFUSED')
  t.equal(await reach(`http://127.0.0.1:${server.port}/health`), 200, 'the service stays on HOST')
})
