import t from 'tap'
import bcrypt from 'bcrypt'
import { createPasswords, prehash } from '../../plugins/app/passwords'
import { isCommonPassword } from '../../src/security/password-policy'

t.test('two passwords that share their first 72 bytes do not both verify', async (t) => {
  const passwords = createPasswords(10, await bcrypt.hash('dummy', 10))
  const base = 'a'.repeat(72)
  const hash = await passwords.hash(base + 'X')
  t.ok(await passwords.verify(base + 'X', hash))
  t.notOk(await passwords.verify(base + 'Y', hash), 'differs after byte 72')
  t.notOk(await passwords.verify(base, hash), 'prefix of 72 bytes')
})

t.test('multi-byte characters count by bytes, every one of them', async (t) => {
  const passwords = createPasswords(10, await bcrypt.hash('dummy', 10))
  const emoji = '😀'.repeat(18) // 72 bytes of UTF-8
  const hash = await passwords.hash(emoji + '😀')
  t.notOk(await passwords.verify(emoji + '😁', hash))
  t.ok(await passwords.verify(emoji + '😀', hash))
})

t.test('a NUL byte never ends a password early', async (t) => {
  const passwords = createPasswords(10, await bcrypt.hash('dummy', 10))
  const hash = await passwords.hash('abcdefgh')
  t.notOk(await passwords.verify('abcdefgh\u0000anything', hash))
  const nulHash = await passwords.hash('abcd\u0000efgh')
  t.notOk(await passwords.verify('abcd\u0000zzzz', nulHash))
  t.ok(await passwords.verify('abcd\u0000efgh', nulHash))
  t.notOk(prehash('abcd\u0000efgh').includes('\u0000'), 'bcrypt never sees the NUL')
})

t.test('compared exactly: no trimming, no case folding', async (t) => {
  const passwords = createPasswords(10, await bcrypt.hash('dummy', 10))
  const hash = await passwords.hash('Secret Phrase 1')
  t.notOk(await passwords.verify('secret phrase 1', hash))
  t.notOk(await passwords.verify(' Secret Phrase 1', hash))
  t.notOk(await passwords.verify('Secret Phrase 1 ', hash))
})

t.test('an unknown user (null hash) never verifies, even with the dummy password', async (t) => {
  const dummy = await bcrypt.hash(prehash('the-dummy'), 10)
  const passwords = createPasswords(10, dummy)
  t.notOk(await passwords.verify('the-dummy', null))
})

t.test('hashes use the configured cost', async (t) => {
  const passwords = createPasswords(11, 'x')
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
