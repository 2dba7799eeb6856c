import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { startFakeFeed, until } from './fake-feed'
import { installFromTarball, startDownstream } from './tarball'

t.test('the packed tarball installs on its own and the example app verifies and refuses revoked tokens', async (t) => {
  const { dir, tarball } = await installFromTarball()
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean).sort()
  t.ok(listing.includes('package/dist/index.js'), 'compiled JS is packed')
  t.ok(listing.includes('package/dist/index.d.ts'), 'types are packed')
  t.ok(listing.includes('package/README.md'))
  t.notOk(listing.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/')), 'no sources or tests')
  const installed = JSON.parse(readFileSync(join(dir, 'node_modules', '@auth-service', 'fastify-verifier', 'package.json'), 'utf8'))
  t.same(Object.keys(installed.dependencies).sort(), ['eventsource', 'fastify-plugin', 'jose'], 'no dependency on the service')

  const feed = await startFakeFeed({ heartbeatMs: 200 })
  t.teardown(feed.close)
  const app = await startDownstream(dir, {
    AUTH_ISSUER: feed.issuer,
    AUTH_AUDIENCE: feed.audience,
    AUTH_JWKS_URL: feed.jwksUrl,
    AUTH_FEED_URLS: feed.streamUrl,
    REVOCATION_FEED_TOKEN: feed.token
  })
  t.teardown(app.stop)
  const sid = randomUUID()
  const token = await feed.sign({ sid })
  const ok = await app.get('/me', token)
  t.equal(ok.status, 200)
  t.equal(ok.body.sid, sid)
  t.equal((await app.get('/me')).status, 401)
  const position = feed.revoke([{ kind: 'sid', id: sid, until: Date.now() + 60_000 }])
  await until(async () => (await app.get('/verifier/status')).body.position === position, 'revocation applied downstream')
  const refused = await app.get('/me', token)
  t.equal(refused.status, 401)
  t.equal(refused.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  const metrics = (await app.get('/metrics')).body as string
  t.match(metrics, /verifier_requests_total\{outcome="revoked"\} 1/, 'metrics land in the host registry')
  t.notMatch(app.output(), feed.token, 'the feed token is never logged')
})
