import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ownRedis, waitFor } from '../helper'
import { claims } from '../support/http'
import { client, cluster, hammer, LIVE_ENTRIES, recovered, REVOKED_LATER, revokeAll, sessions, verdict } from '../support/stale-redis'

// Part of the fault suite (faults.test.ts; a file of its own for its run time). A Redis
// restarted from an older RDB snapshot holds the marker of an earlier rebuild but lacks the
// revocations made after the snapshot: no instance may believe it before it is rebuilt
// (docs/api.md, "Immediacy, on every instance, under faults").

t.test('F11: Redis restarted from an older RDB snapshot is not believed until rebuilt', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-rdb-'))
  const redis = await ownRedis(t, { args: ['--dir', dir, '--dbfilename', 'dump.rdb'] })
  const { servers, prefix } = await cluster(t, redis.url)
  const tokens = await sessions(t, servers, REVOKED_LATER)

  const admin = client(redis.url)
  t.teardown(() => admin.disconnect())
  t.equal(await admin.save(), 'OK', 'the snapshot is taken')
  await revokeAll(t, servers, tokens)

  // The snapshot is older: read on a Redis of its own, it holds the rebuild marker and the
  // 20,000 live entries, but none of the sessions revoked after it.
  const copy = await ownRedis(t, { args: ['--dir', dir, '--dbfilename', 'dump.rdb'] })
  const look = client(copy.url)
  t.ok(await look.exists(`${prefix}rebuilt`), 'the snapshot holds the rebuild marker')
  t.ok(await look.dbsize() >= LIVE_ENTRIES, 'and the live entries')
  t.equal(await look.exists(...tokens.map((token) => `${prefix}sid:${claims(token).sid}`)), 0, 'but not the later revocations')
  look.disconnect()
  await copy.stop()

  const load = hammer(servers, tokens)
  await waitFor(async () => load.answered().every((n) => n >= 20), 30_000)
  await redis.stop()
  await redis.start()
  await recovered(redis.url, prefix, servers, tokens, load)
  await load.stop()
  verdict(t, load.statuses)
})
