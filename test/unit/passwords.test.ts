import t from 'tap'
import { getPriority } from 'node:os'
import bcrypt from 'bcrypt'
import { createPasswords, prehash } from '../../plugins/app/passwords'
import { createBcryptPool } from '../../src/security/bcrypt-pool'
import { isCommonPassword } from '../../src/security/password-policy'

// The main thread's nice value before any pool exists (0, or more when the tests run niced).
const MAIN_NICE = getPriority()

// The service's engine, without load shedding (that is bcrypt-pool.test.ts's subject).
const engine = createBcryptPool(2, { maxWaitMs: Infinity })
t.teardown(() => engine.close())

t.test('two passwords that share their first 72 bytes do not both verify', async (t) => {
  const passwords = createPasswords(10, await bcrypt.hash('dummy', 10), { engine })
  const base = 'a'.repeat(72)
  const hash = await passwords.hash(base + 'X')
  t.ok(await passwords.verify(base + 'X', hash))
  t.notOk(await passwords.verify(base + 'Y', hash), 'differs after byte 72')
  t.notOk(await passwords.verify(base, hash), 'prefix of 72 bytes')
})

t.test('multi-byte characters count by bytes, every one of them', async (t) => {
  const passwords = createPasswords(10, await bcrypt.hash('dummy', 10), { engine })
  const emoji = '😀'.repeat(18) // 72 bytes of UTF-8
  const hash = await passwords.hash(emoji + '😀')
  t.notOk(await passwords.verify(emoji + '😁', hash))
  t.ok(await passwords.verify(emoji + '😀', hash))
})

t.test('a NUL byte never ends a password early', async (t) => {
  const passwords = createPasswords(10, await bcrypt.hash('dummy', 10), { engine })
  const hash = await passwords.hash('abcdefgh')
  t.notOk(await passwords.verify('abcdefgh\u0000anything', hash))
  const nulHash = await passwords.hash('abcd\u0000efgh')
  t.notOk(await passwords.verify('abcd\u0000zzzz', nulHash))
  t.ok(await passwords.verify('abcd\u0000efgh', nulHash))
  t.notOk(prehash('abcd\u0000efgh').includes('\u0000'), 'bcrypt never sees the NUL')
})

t.test('compared exactly: no trimming, no case folding', async (t) => {
  const passwords = createPasswords(10, await bcrypt.hash('dummy', 10), { engine })
  const hash = await passwords.hash('Secret Phrase 1')
  t.notOk(await passwords.verify('secret phrase 1', hash))
  t.notOk(await passwords.verify(' Secret Phrase 1', hash))
  t.notOk(await passwords.verify('Secret Phrase 1 ', hash))
})

t.test('an unknown user (null hash) never verifies, even with the dummy password', async (t) => {
  const dummy = await bcrypt.hash(prehash('the-dummy'), 10)
  const passwords = createPasswords(10, dummy, { engine })
  t.notOk(await passwords.verify('the-dummy', null))
})

t.test('hashes use the configured cost', async (t) => {
  const passwords = createPasswords(11, 'x', { engine })
  const hash = await passwords.hash('some long password')
  t.equal(bcrypt.getRounds(hash), 11)
  t.notMatch(hash, /some long password/)
})

t.test('common passwords are refused case-insensitively', async (t) => {
  t.ok(isCommonPassword('password123'))
  t.ok(isCommonPassword('PASSWORD123'))
  t.ok(isCommonPassword('qwertyuiop'))
  t.notOk(isCommonPassword('correct horse battery staple'))
})

t.test('the bcrypt pool: same results as bcrypt, on threads at the lowest priority', async (t) => {
  const pool = createBcryptPool(2, { maxWaitMs: Infinity }) // no load shedding here: see bcrypt-pool.test.ts
  t.teardown(() => pool.close())
  const hash = await pool.hash('some data', 10)
  t.equal(bcrypt.getRounds(hash), 10)
  t.ok(await bcrypt.compare('some data', hash), 'a pool hash verifies with bcrypt')
  t.ok(await pool.compare('some data', await bcrypt.hash('some data', 10)), 'and the other way round')
  t.notOk(await pool.compare('other data', hash))
  const many = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.compare(`data ${i}`, hash)))
  t.same(many, [false, false, false, false, false, false], 'parallel requests all answered')
  t.equal(await pool.compare('x', 'not a bcrypt hash'), false, 'a malformed hash never matches')
  await t.rejects(pool.hash('x', 'not a salt' as unknown as number), 'a worker error reaches the caller')
  if (process.platform === 'linux') {
    const { readdirSync, readFileSync } = await import('node:fs')
    // field 19 of /proc/<pid>/task/<tid>/stat is the nice value
    const nices = readdirSync('/proc/self/task').map((tid) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]))
    t.ok(nices.filter((n) => n === 19).length >= 2, `two threads at nice 19 (${nices.join(',')})`)
    t.equal(nices[readdirSync('/proc/self/task').indexOf(String(process.pid))], MAIN_NICE, 'the event loop keeps its priority')
  }
})
