import t from 'tap'
import {
  beat, connectionLost, initialState, messageReceived, messageUnreadable, reconciled, reloadEnded, reloadStarted,
  trusted, type ReplicaState
} from '../../src/revocation/replica-state'
import { LEASE_MS } from '../../src/revocation/timing'

// The replica's transitions (src/revocation/replica-state.ts), without Redis: each is a pure
// function of the state and what happened. test/plugins/revocation-store.test.ts and the
// fault suite check the same protocol against a real Redis.

/** A replica that reloaded (Redis's counter at `sequence`, the log at 10) and had one good heartbeat at time 1000. */
function inSync (sequence = 5): ReplicaState {
  const loaded = reloadEnded(reloadStarted(initialState), { sequence, position: 10 }, true).state
  return beat(loaded, { epoch: loaded.epoch, received: sequence, sequence, sentAt: 1000 }).state
}

t.test('a replica starts untrusted, and is trusted only once reloaded and proven by a heartbeat', async (t) => {
  t.equal(initialState.phase, 'untrusted')
  t.notOk(trusted(initialState, 0))
  const syncing = reloadStarted(initialState)
  t.equal(syncing.phase, 'syncing')
  t.notOk(trusted(syncing, 0), 'reads go to Redis while it loads')
  const loaded = reloadEnded(syncing, { sequence: 5, position: 10 }, true)
  t.same([loaded.state.phase, loaded.reload], ['trusted', false], 'in sync once loaded')
  t.equal(loaded.state.lastSeq, 5, 'it stands where Redis\'s counter stood')
  t.equal(loaded.state.position, 10)
  t.notOk(trusted(loaded.state, 0), 'but no heartbeat has proved it current yet')
  const proven = beat(loaded.state, { epoch: loaded.state.epoch, received: 5, sequence: 5, sentAt: 1000 })
  t.ok(trusted(proven.state, 1000))
})

t.test('the lease: trusted for LEASE_MS after the PING of the last proof was sent, not a moment longer', async (t) => {
  const s = inSync()
  t.ok(trusted(s, 1000 + LEASE_MS - 1))
  t.notOk(trusted(s, 1000 + LEASE_MS), 'the commit-wait lasts exactly as long: a revoking instance answers no sooner')
  const renewed = beat(s, { epoch: s.epoch, received: 5, sequence: 5, sentAt: 1150 }).state
  t.ok(trusted(renewed, 1150 + LEASE_MS - 1), 'each heartbeat renews it')
})

t.test('messages: in order they move the replica on; a gap makes it reload', async (t) => {
  const s = inSync(5)
  const next = messageReceived(s, 6)
  t.same([next.state.phase, next.state.lastSeq, next.reload], ['trusted', 6, false])
  t.equal(messageReceived(next.state, 6).state.lastSeq, 6, 'a repeat changes nothing')
  t.equal(messageReceived(next.state, 3).state.lastSeq, 6, 'one that was in flight during a reload changes nothing')
  const gap = messageReceived(next.state, 8)
  t.same([gap.state.phase, gap.reload, gap.lost], ['untrusted', true, 'sequence gap'])
  t.notOk(trusted(gap.state, 1000), 'untrusted at once, whatever its lease')
  const bare = messageReceived(s, Number.NaN)
  t.same([bare.state.phase, bare.reload, bare.lost], ['untrusted', true, 'message without a sequence number'])
  const unreadable = messageUnreadable(s)
  t.same([unreadable.state.phase, unreadable.reload, unreadable.lost], ['untrusted', true, 'unreadable message'])
})

t.test('while it reloads, numbers are only recorded: what it missed before, the reload covers', async (t) => {
  const syncing = reloadStarted(inSync(5))
  t.equal(syncing.lastSeq, 0, 'counted afresh')
  const next = messageReceived(syncing, 9)
  t.same([next.state.phase, next.state.lastSeq, next.reload], ['syncing', 9, false], 'no gap is a gap yet')
  t.equal(reloadEnded(next.state, { sequence: 8, position: 12 }, true).state.lastSeq, 9, 'the higher of the two')
})

t.test('the connection lost: untrusted, and the reload waits for it to be ready', async (t) => {
  const s = inSync()
  const lost = connectionLost(s)
  t.same([lost.state.phase, lost.reload, lost.lost], ['untrusted', false, 'connection lost'])
  t.equal(lost.state.epoch, s.epoch + 1)
  t.equal(connectionLost(lost.state).lost, undefined, 'trust is lost (and logged) once')
})

t.test('a loss during a reload: it ends untrusted and reloads again, once the link is up', async (t) => {
  const syncing = reloadStarted(initialState)
  const lost = connectionLost(syncing).state
  const ended = reloadEnded(lost, { sequence: 5, position: 10 }, true)
  t.same([ended.state.phase, ended.reload], ['untrusted', true])
  const down = reloadEnded(lost, { sequence: 5, position: 10 }, false)
  t.same([down.state.phase, down.reload], ['untrusted', false], 'link down: the ready event will start it')
  const quiet = reloadEnded(syncing, { sequence: 5, position: 10 }, false)
  t.same([quiet.state.phase, quiet.reload], ['untrusted', false], 'the subscription dropped without a loss seen yet')
})

t.test('a failed reload leaves it untrusted; it is retried at once only when a loss came meanwhile', async (t) => {
  const syncing = reloadStarted(initialState)
  const failed = reloadEnded(syncing, null, true)
  t.same([failed.state.phase, failed.reload, failed.state.position], ['untrusted', false, null])
  const retried = reloadEnded(connectionLost(syncing).state, null, true)
  t.same([retried.state.phase, retried.reload], ['untrusted', true])
  const beatNow = beat(failed.state, { epoch: failed.state.epoch, received: 0, sequence: 5, sentAt: 2000 })
  t.same([beatNow.state.phase, beatNow.reload], ['untrusted', true], 'the next heartbeat asks for it')
  const duringReload = beat(syncing, { epoch: syncing.epoch, received: 0, sequence: 5, sentAt: 2000 })
  t.same([duringReload.state, duringReload.reload], [syncing, false], 'not while one is under way')
})

t.test('heartbeats: a proof only when Redis is not ahead of what arrived, and not reset', async (t) => {
  const s = inSync(5)
  const ahead = beat(s, { epoch: s.epoch, received: 5, sequence: 6, sentAt: 1100 })
  t.same([ahead.state.phase, ahead.reload, ahead.lost], ['untrusted', true, 'a message did not arrive'])
  const reset = beat(s, { epoch: s.epoch, received: 5, sequence: 0, sentAt: 1100 })
  t.same([reset.state.phase, reset.reload, reset.lost], ['untrusted', true, 'sequence reset'])
  const good = beat(s, { epoch: s.epoch, received: 5, sequence: 5, sentAt: 1100 })
  t.equal(good.state.proofAt, 1100)
})

t.test('a heartbeat begun before a loss proves nothing after it', async (t) => {
  const s = inSync(5)
  const epoch = s.epoch
  const lost = connectionLost(s).state
  const reloaded = reloadEnded(reloadStarted(lost), { sequence: 5, position: 10 }, true).state
  const late = beat(reloaded, { epoch, received: 5, sequence: 5, sentAt: 5000 })
  t.equal(late.state, reloaded, 'dropped')
  t.notOk(trusted(late.state, 5000))
})

t.test('reconciliation: only after a first load, and it moves the log position on', async (t) => {
  t.equal(initialState.position, null, 'before the first load there is no position to read from')
  const s = inSync()
  t.equal(reconciled(s, 14).position, 14)
  t.equal(reloadEnded(reloadStarted(reconciled(s, 14)), { sequence: 5, position: 12 }, true).state.position, 14,
    'a reload never moves it back')
})
