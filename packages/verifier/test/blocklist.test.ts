import t from 'tap'
import { Blocklist } from '../src/blocklist'

t.test('holds jti and sid apart, keeps the later until, drops entries once their until has passed', async (t) => {
  const b = new Blocklist()
  const now = 1_000_000
  b.replace([{ kind: 'jti', id: 'a', until: now + 10 }, { kind: 'sid', id: 'b', until: now + 20 }], now)
  t.equal(b.revoked('a', 'x'), true)
  t.equal(b.revoked('b', 'x'), false, 'a sid entry does not cover a jti of the same text')
  t.equal(b.revoked('x', 'b'), true)
  b.add([{ kind: 'jti', id: 'a', until: now + 30 }, { kind: 'jti', id: 'gone', until: now - 1 }], now)
  t.equal(b.size, 2, 'an entry already past its until is not kept')
  t.equal(b.sweep(now + 25), 1, 'sid b went, jti a was extended')
  t.equal(b.revoked('a', 'b'), true)
  t.equal(b.sweep(now + 31), 1)
  t.equal(b.size, 0)
  b.add([{ kind: 'other' as 'jti', id: 'z', until: now + 99 }], now)
  t.equal(b.size, 0, 'unknown kinds are ignored')
})
