import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ownRedis, waitFor } from '../helper'
import { claims } from '../support/http'
import { startRedisProxy } from '../support/redis-proxy'
import { client, cluster, hammer, recovered, REVOKED_LATER, revokeAll, sessions, verdict } from '../support/stale-redis'

// Part of the fault suite (faults.test.ts; a file of its own for its run time). A failover
// to a replica that stopped following before the last revocations: it holds the marker of
// an earlier rebuild but lacks them; no instance may believe it before it is rebuilt
// (docs/api.md, "Immediacy, on every instance, under faults").

t.test('F12: a failover to a lagging replica is not believed until rebuilt', async (t) => {
  // Each in a directory of its own: a full resynchronisation may write a snapshot file.
  const dir = () => mkdtempSync(join(tmpdir(), 'auth-replica-'))
  const primary = await ownRedis(t, { args: ['--dir', dir()] })
  const replica = await ownRedis(t, { args: ['--dir', dir(), '--replicaof', '127.0.0.1', String(primary.port)] })
  const proxy = await startRedisProxy({ port: primary.port })
  t.teardown(() => proxy.close())
  const { servers, prefix } = await cluster(t, proxy.url)
  const tokens = await sessions(t, servers, REVOKED_LATER)

  // The replica has everything so far, then stops following: what comes next it lacks.
  const admin = client(primary.url)
  const follower = client(replica.url)
  t.teardown(() => { admin.disconnect(); follower.disconnect() })
  await waitFor(async () => (await admin.wait(1, 1000)) === 1, 30_000)
  t.ok(await follower.exists(`${prefix}rebuilt`), 'the replica holds the rebuild marker')
  await follower.replicaof('NO', 'ONE')
  await revokeAll(t, servers, tokens)
  const later = tokens.map((token) => `${prefix}sid:${claims(token).sid}`)
  t.equal(await follower.exists(...later), 0, 'the replica lacks the later revocations')

  const load = hammer(servers, tokens)
  await waitFor(async () => load.answered().every((n) => n >= 20), 30_000)
  proxy.retarget({ port: replica.port })
  await recovered(replica.url, prefix, servers, tokens, load)
  await load.stop()
  verdict(t, load.statuses)
})
