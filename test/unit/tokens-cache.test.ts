import t from 'tap'
import { VerifiedTokenCache } from '../../src/tokens/verified-token-cache'

const claims = (exp: number, nbf?: number) => ({ sub: 's', sid: 'd', jti: 'j', iat: 100, exp, ...(nbf === undefined ? {} : { nbf }) })

t.test('a hit while exp is ahead (and nbf behind); expired entries are dropped', async (t) => {
  const cache = new VerifiedTokenCache(10)
  cache.set('a', claims(200))
  t.same(cache.get('a', 150), claims(200), 'current')
  t.equal(cache.get('a', 200), 'expired', 'exp reached')
  t.equal(cache.get('a', 150), undefined, 'and forgotten')
  cache.set('b', claims(300, 160))
  t.equal(cache.get('b', 150), 'expired', 'nbf ahead: not served early (and dropped)')
  t.equal(cache.get('b', 170), undefined)
  t.equal(cache.get('a.', 150), undefined, 'keyed by the exact text')
})

t.test('bounded: full, it is emptied before the next entry; size 0 remembers nothing', async (t) => {
  const cache = new VerifiedTokenCache(3)
  for (const k of ['a', 'b', 'c']) cache.set(k, claims(200))
  t.ok(cache.get('c', 150) !== undefined, 'three fit')
  cache.set('d', claims(200))
  t.equal(cache.get('a', 150), undefined, 'the fourth emptied it')
  t.ok(cache.get('d', 150) !== undefined, 'and is kept')
  const none = new VerifiedTokenCache(0)
  none.set('a', claims(200))
  t.equal(none.get('a', 150), undefined)
})
