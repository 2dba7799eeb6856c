import t from 'tap'
import { logLines, startServer } from '../helper'

// Issue 15, finding 8: a token sent in the query string was logged with req.url.

t.test('a query string never reaches the log: the URL is logged as its path', async (t) => {
  const server = await startServer(t, { LOG_LEVEL: 'info' })
  const secret = 'eyJhbGciOiJIUzI1NiJ9.query-secret-for-the-log-test.c2ln'
  const id = 'log-redaction-request'
  for (const path of [`/users/me?access_token=${secret}`, `/no-such-route?token=${secret}`]) {
    const res = await fetch(`${server.url}${path}`, { headers: { 'x-request-id': id } })
    t.ok(res.status >= 400, `${path.split('?')[0]}: refused (${res.status})`)
  }
  // The request lines of both, found by the client's request id.
  const lines = () => logLines(server)
  const reqIds = () => new Set(lines().filter((l) => l.clientRequestId === id || l.req?.headers?.['x-request-id'] === id).map((l) => l.reqId))
  const incoming = () => lines().filter((l) => l.req !== undefined && (reqIds().has(l.reqId) || String(l.req.url).startsWith('/no-such-route') || String(l.req.url).startsWith('/users/me?')))
  const deadline = Date.now() + 10_000
  while (incoming().length < 2 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
  t.same(incoming().map((l) => l.req.url).sort(), ['/no-such-route?[redacted]', '/users/me?[redacted]'])
  t.notOk(server.output().includes(secret), 'the token is in no log line')
})
