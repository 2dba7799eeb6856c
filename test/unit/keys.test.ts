import t from 'tap'
import { spawnSync } from 'node:child_process'
import {
  chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync
} from 'node:fs'
import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { SignJWT } from 'jose'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../src/config'
import { generateSigningJwk, parseKeySet, type AsymmetricAlg } from '../../src/signing-keys'
import { createAsymmetricAccessTokenVerifier, importVerificationKeys } from '../../src/tokens/asymmetric-verifier'
import { withLowS } from '../../src/tokens/es256-low-s'
import { SERVER_ENTRY, startServer } from '../helper'

// JWT_ALG / JWT_KEYS_FILE (docs/api.md, "Scale-out" and "Configuration") and `npm run keys`.

const ALGS: AsymmetricAlg[] = ['EdDSA', 'ES256', 'RS256']
const ROOT = join(__dirname, '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'auth-keys-'))
let files = 0

type Jwk = Record<string, unknown>
const keyFile = (keys: unknown, raw?: string) => {
  const file = join(dir, `keys-${++files}.json`)
  writeFileSync(file, raw ?? JSON.stringify({ keys }), { mode: 0o600 })
  return file
}
/** A private JWK made by node:crypto, for key types `generateSigningJwk` never makes. */
const nodeJwk = (type: 'ec' | 'rsa' | 'ed448' | 'x25519', opts: Record<string, unknown> = {}, kid = `node-${type}`): Jwk => {
  const { privateKey } = generateKeyPairSync(type as 'ec', opts as { namedCurve: string })
  return { ...privateKey.export({ format: 'jwk' }), kid }
}

const generated = new Map<AsymmetricAlg, Jwk[]>()
t.before(async () => {
  for (const alg of ALGS) generated.set(alg, [await generateSigningJwk(alg), await generateSigningJwk(alg)])
})
const privateParts = (keys: Jwk[]) => keys.flatMap((k) => ['d', 'p', 'q', 'dp', 'dq', 'qi'].map((m) => k[m]).filter((v): v is string => typeof v === 'string'))

function configError (env: Record<string, string | undefined>): ConfigError | undefined {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  return undefined
}

t.test('JWT_ALG: HS256 by default; anything but HS256, EdDSA, ES256, RS256 stops the start', async (t) => {
  const c = loadConfig({ JWT_SECRET: 'x'.repeat(40) })
  t.equal(c.jwt.alg, 'HS256')
  t.same(c.jwt.keys, [])
  for (const alg of ['none', 'None', 'HS384', 'HS512', 'RS512', 'PS256', 'ES384', 'eddsa', 'Ed25519', 'es256', ' RS256']) {
    const err = configError({ JWT_ALG: alg, JWT_KEYS_FILE: keyFile(generated.get('EdDSA')) })
    t.equal(err?.variable, 'JWT_ALG', `JWT_ALG=${JSON.stringify(alg)} is refused`)
    t.match(err?.message, /JWT_ALG/, 'and named in the message')
  }
})

t.test('each asymmetric JWT_ALG loads its key set in order; JWT_SECRET is not used', async (t) => {
  for (const alg of ALGS) {
    const keys = generated.get(alg)!
    // production with no JWT_SECRET: fine, the keys sign; a short JWT_SECRET is not even read
    for (const secret of [undefined, 'short']) {
      const c = loadConfig({ NODE_ENV: 'production', MFA_ENROLMENT: 'off', JWT_SECRET: secret, JWT_ALG: alg, JWT_KEYS_FILE: keyFile(keys) })
      t.equal(c.jwt.alg, alg)
      t.same(c.jwt.keys.map((k) => k.kid), keys.map((k) => k.kid), `${alg}: every key, the first one first`)
      t.equal(c.jwt.secret.length, 0, `${alg}: no HS256 key`)
      t.equal(c.jwt.ephemeralSecret, false)
      for (const k of c.jwt.keys) {
        t.equal(k.publicJwk.alg, alg)
        t.equal(k.publicJwk.use, 'sig')
        t.notOk('d' in k.publicJwk, `${alg}: the public JWK has no private member`)
      }
    }
  }
})

t.test('bad JWT_KEYS_FILE contents stop the start, naming the variable and printing no key material', async (t) => {
  const [ed1, ed2] = generated.get('EdDSA')!
  const [ec1] = generated.get('ES256')!
  const [rsa1] = generated.get('RS256')!
  const publicOnly = (jwk: Jwk) => Object.fromEntries(Object.entries(jwk).filter(([m]) => !['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(m)))
  const all = [...generated.values()].flat()
  const unreadable = join(dir, 'a-directory')
  mkdirSync(unreadable)

  const cases: Array<[string, Record<string, string | undefined>, RegExp]> = [
    ['asymmetric JWT_ALG without JWT_KEYS_FILE', { JWT_ALG: 'EdDSA' }, /required when JWT_ALG=EdDSA/],
    ['JWT_KEYS_FILE with HS256 (JWT_ALG forgotten)', { JWT_KEYS_FILE: keyFile([ed1]) }, /JWT_ALG is HS256/],
    ['a file that does not exist', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: join(dir, 'missing.json') }, /cannot be read \(ENOENT/],
    ['a file that cannot be read (a directory)', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: unreadable }, /cannot be read \(EISDIR/],
    ['not JSON (a PEM)', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile(null, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string) }, /not valid JSON/],
    ['a bare JWK, not a set', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile(null, JSON.stringify(ed1)) }, /JWK Set/],
    ['an empty set', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([]) }, /no key/],
    ['EdDSA with a P-256 key', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([ec1]) }, /JWT_ALG=EdDSA needs Ed25519/],
    ['EdDSA with an Ed448 key', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([nodeJwk('ed448')]) }, /JWT_ALG=EdDSA needs Ed25519/],
    ['EdDSA with an X25519 key', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([nodeJwk('x25519')]) }, /JWT_ALG=EdDSA needs Ed25519/],
    ['EdDSA, second key of another type', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([ed1, rsa1]) }, /JWT_ALG=EdDSA needs Ed25519/],
    ['ES256 with an Ed25519 key', { JWT_ALG: 'ES256', JWT_KEYS_FILE: keyFile([ed1]) }, /JWT_ALG=ES256 needs P-256/],
    ['ES256 with a P-384 key', { JWT_ALG: 'ES256', JWT_KEYS_FILE: keyFile([nodeJwk('ec', { namedCurve: 'P-384' })]) }, /JWT_ALG=ES256 needs P-256/],
    ['ES256 with an RSA key', { JWT_ALG: 'ES256', JWT_KEYS_FILE: keyFile([rsa1]) }, /JWT_ALG=ES256 needs P-256/],
    ['RS256 with a P-256 key', { JWT_ALG: 'RS256', JWT_KEYS_FILE: keyFile([ec1]) }, /JWT_ALG=RS256 needs RSA/],
    ['RS256 with a 1024-bit RSA key', { JWT_ALG: 'RS256', JWT_KEYS_FILE: keyFile([nodeJwk('rsa', { modulusLength: 1024 })]) }, /1024-bit RSA key, but JWT_ALG=RS256 needs RSA keys of at least 2048 bits/],
    ['an HS256 key in the set', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([{ kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0', kid: 'oct' }]) }, /JWT_ALG=EdDSA needs Ed25519/],
    ['an Ed25519 key that says alg ES256', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([{ ...ed1, alg: 'ES256' }]) }, /says alg ES256/],
    ['a key for encryption', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([{ ...ed1, use: 'enc' }]) }, /use enc/],
    ['two keys with one kid', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([ed1, { ...ed2, kid: ed1.kid }]) }, /two keys with kid/],
    ['a key without kid', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([{ ...ed1, kid: undefined }]) }, /key #1 has no kid/],
    ['an empty kid', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([ed1, { ...ed2, kid: '' }]) }, /key #2 has no kid/],
    ['a public-only Ed25519 key', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([publicOnly(ed1)]) }, /is a public key/],
    ['a public-only key after a private one', { JWT_ALG: 'ES256', JWT_KEYS_FILE: keyFile([ec1, { ...publicOnly(generated.get('ES256')![1]) }]) }, /is a public key/],
    ['a public-only RSA key', { JWT_ALG: 'RS256', JWT_KEYS_FILE: keyFile([publicOnly(rsa1)]) }, /is a public key/],
    ['a damaged private key', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([{ ...ed1, d: 'AAAA' }]) }, /not a valid OKP private key/],
    ['a public part of another key', { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([{ ...ed1, x: ed2.x }]) }, /does not match its private part/]
  ]
  for (const [name, env, reason] of cases) {
    const err = configError(env)
    t.ok(err, `${name}: refused`)
    const variable = 'JWT_KEYS_FILE'
    t.equal(err?.variable, variable, `${name}: names ${variable}`)
    t.match(err?.message, variable, `${name}: the message names it`)
    t.match(err?.message, reason, `${name}: says why`)
    for (const secret of privateParts(all)) t.notOk(err?.message.includes(secret), `${name}: no private key material in the message`)
  }
})

// --- npm run keys ---------------------------------------------------------------------------

function keys (...args: string[]) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'keys.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  return { status: res.status, stdout: res.stdout, stderr: res.stderr }
}
const readKeys = (file: string) => (JSON.parse(readFileSync(file, 'utf8')) as { keys: Jwk[] }).keys
const mode = (file: string) => statSync(file).mode & 0o777

t.test('keys generate: one private key of the algorithm, mode 0600, that the service loads', async (t) => {
  for (const alg of ALGS) {
    const file = join(dir, `generated-${alg}.json`)
    const res = keys('generate', '--alg', alg, '--out', file)
    t.equal(res.status, 0, `${alg}: exit 0 ${res.stderr}`)
    t.equal(mode(file), 0o600, `${alg}: mode 0600`)
    const written = readKeys(file)
    t.equal(written.length, 1)
    t.equal(written[0].alg, alg)
    t.equal(written[0].use, 'sig')
    t.type(written[0].d, 'string', 'a private key')
    t.match(res.stdout, written[0].kid as string, 'prints the kid')
    for (const secret of privateParts(written)) t.notOk(res.stdout.includes(secret) || res.stderr.includes(secret), `${alg}: prints no private member`)
    const c = loadConfig({ JWT_ALG: alg, JWT_KEYS_FILE: file })
    t.same(c.jwt.keys.map((k) => k.kid), [written[0].kid], `${alg}: the service accepts it`)

    const before = readFileSync(file, 'utf8')
    const again = keys('generate', '--alg', alg, '--out', file)
    t.equal(again.status, 1, `${alg}: never overwrites a key file`)
    t.match(again.stderr, /exists/)
    t.equal(readFileSync(file, 'utf8'), before, 'the file is unchanged')
  }
  for (const bad of [['generate', '--alg', 'HS256', '--out', join(dir, 'hs.json')], ['generate', '--alg', 'EdDSA'], ['generate', '--out', join(dir, 'x.json')], ['frobnicate']]) {
    t.equal(keys(...bad).status, 2, `${bad.join(' ')}: usage error`)
  }
})

t.test('keys --help: the usage alone, on stdout, exit 0', async (t) => {
  for (const args of [['--help'], ['-h'], ['help'], ['generate', '--help']]) {
    const res = keys(...args)
    t.equal(res.status, 0, `${args.join(' ')}: exit 0`)
    t.match(res.stdout, /^usage: npm run keys -- generate --alg EdDSA\|ES256\|RS256 --out FILE\n/)
    t.equal(res.stderr, '', 'nothing else')
  }
})

t.test('keys generate --out into a folder that does not exist: says which folder and what to do, writes nothing', async (t) => {
  const out = join(dir, 'no-such-folder', 'keys.json')
  const res = keys('generate', '--alg', 'EdDSA', '--out', out)
  t.equal(res.status, 1)
  t.equal(res.stderr, `cannot write ${out}: the folder ${join(dir, 'no-such-folder')} does not exist. ` +
    `Create it first (mkdir -p ${join(dir, 'no-such-folder')}; readable by the service's user only) or choose another --out.\n`)
  t.notOk(existsSync(out))
})

t.test('keys rotate: a new key in front, the others kept in order; --stage, promote, remove', async (t) => {
  // The whole sequence for one algorithm (the file handling is the same for all: 8 CLI runs of
  // about a CPU-second each); a rotation of each of the others, which makes a key of its own.
  for (const alg of ALGS.slice(1)) {
    const file = join(dir, `rotated-once-${alg}.json`)
    t.equal(keys('generate', '--alg', alg, '--out', file).status, 0)
    const [first] = readKeys(file)
    t.equal(keys('rotate', file).status, 0, `${alg}: rotate`)
    const rotated = readKeys(file)
    t.same(rotated.map((k) => k.alg), [alg, alg], `${alg}: a new key of the same algorithm`)
    t.same(rotated[1], first, `${alg}: the old key kept`)
    t.same(loadConfig({ JWT_ALG: alg, JWT_KEYS_FILE: file }).jwt.keys.map((k) => k.kid), [rotated[0].kid, first.kid], `${alg}: the service loads both`)
  }
  {
    const alg = ALGS[0]
    const file = join(dir, `rotated-${alg}.json`)
    t.equal(keys('generate', '--alg', alg, '--out', file).status, 0)
    const [first] = readKeys(file)
    chmodSync(file, 0o644) // loosened by someone: a rotation makes it 0600 again

    t.equal(keys('rotate', file).status, 0, `${alg}: rotate`)
    const rotated = readKeys(file)
    t.equal(rotated.length, 2)
    t.not(rotated[0].kid, first.kid, 'a new key, first: it signs')
    t.same(rotated[1], first, 'the old key kept as it was: it still verifies')
    t.equal(rotated[0].alg, alg, 'of the same algorithm')
    t.equal(mode(file), 0o600, 'mode 0600')
    t.same(loadConfig({ JWT_ALG: alg, JWT_KEYS_FILE: file }).jwt.keys.map((k) => k.kid), [rotated[0].kid, first.kid], 'the service loads both, new first')

    t.equal(keys('rotate', file, '--stage').status, 0, `${alg}: rotate --stage`)
    const staged = readKeys(file)
    t.same(staged.map((k) => k.kid), [rotated[0].kid, staged[1].kid, first.kid], 'a staged key goes second: published, not signing')
    t.equal(keys('promote', file, staged[1].kid as string).status, 0, 'promote')
    t.same(readKeys(file).map((k) => k.kid), [staged[1].kid, rotated[0].kid, first.kid], 'the promoted key signs')

    const removeSigner = keys('remove', file, staged[1].kid as string)
    t.equal(removeSigner.status, 1, 'the signing key cannot be removed')
    t.match(removeSigner.stderr, /promote another key first/)
    t.equal(keys('remove', file, first.kid as string).status, 0, 'remove the oldest')
    t.same(readKeys(file).map((k) => k.kid), [staged[1].kid, rotated[0].kid], 'gone, the others kept')
    t.equal(mode(file), 0o600)
    t.equal(keys('remove', file, 'no-such-kid').status, 1, 'an unknown kid')
  }

  // A kid is base64url and may begin with "-" (one key in 64): promote and remove must not
  // read it as an option (CI met one: promote exited 2).
  const dashed = { ...(await generateSigningJwk('EdDSA')), kid: '-Fcpf-looks-like-an-option' }
  const signer = await generateSigningJwk('EdDSA')
  const dashFile = keyFile([signer, dashed])
  t.equal(keys('promote', dashFile, dashed.kid).status, 0, 'promote a kid that begins with "-"')
  t.same(readKeys(dashFile).map((k) => k.kid), [dashed.kid, signer.kid])
  t.equal(keys('remove', dashFile, '--', signer.kid as string).status, 0, 'a "--" before the KID is allowed')
  t.same(readKeys(dashFile).map((k) => k.kid), [dashed.kid])
  t.equal(keys('remove', dashFile, '--stage').status, 1, 'an option-like KID is looked up as a kid: unknown, not a usage error')

  // A file the service would refuse is not rotated (nor rewritten).
  const ed = generated.get('EdDSA')!
  const bad = keyFile([ed[0], { ...ed[1], kid: ed[0].kid }])
  const before = readFileSync(bad, 'utf8')
  const res = keys('rotate', bad)
  t.equal(res.status, 1, 'rotate refuses a file with a duplicate kid')
  t.match(res.stderr, /two keys with kid/)
  t.equal(readFileSync(bad, 'utf8'), before, 'and leaves it as it was')
  t.equal(keys('rotate', join(dir, 'nothing-here.json')).status, 1, 'a missing file')
})

t.test('keys rotate through a symlink: the link stays, its target gets the new keys (mode 0600)', async (t) => {
  // A deployment often points the service at a link (e.g. current.json -> keys-2024.json).
  const targetDir = join(dir, 'link-target')
  const linkDir = join(dir, 'link-home')
  mkdirSync(targetDir)
  mkdirSync(linkDir)
  const target = join(targetDir, 'keys.json')
  t.equal(keys('generate', '--alg', 'EdDSA', '--out', target).status, 0)
  const [first] = readKeys(target)
  chmodSync(target, 0o640)
  const link = join(linkDir, 'current.json')
  symlinkSync(target, link)

  const res = keys('rotate', link)
  t.equal(res.status, 0, `rotate through the link: ${res.stderr}`)
  t.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link')
  t.equal(readlinkSync(link), target, 'to the same target')
  const rotated = readKeys(target)
  t.same(rotated.map((k) => k.kid), [rotated[0].kid, first.kid], 'the target holds the new key first, then the old one')
  t.not(rotated[0].kid, first.kid)
  t.equal(mode(target), 0o600, 'the target is mode 0600')
  t.same(readdirSync(linkDir), ['current.json'], 'no temporary file left beside the link')
  t.same(readdirSync(targetDir), ['keys.json'], 'nor beside the target')

  t.equal(keys('promote', link, first.kid as string).status, 0, 'promote through the link')
  t.ok(lstatSync(link).isSymbolicLink())
  t.same(readKeys(target).map((k) => k.kid), [first.kid, rotated[0].kid], 'written to the target')
})

t.test('the service stops at start naming the variable (built server: npm run build first)', async (t) => {
  const ed = generated.get('EdDSA')!
  const cases: Array<[Record<string, string>, string]> = [
    [{ JWT_ALG: 'none' }, 'JWT_ALG'],
    [{ JWT_ALG: 'EdDSA' }, 'JWT_KEYS_FILE'],
    [{ JWT_ALG: 'EdDSA', JWT_KEYS_FILE: join(dir, 'missing.json') }, 'JWT_KEYS_FILE'],
    [{ JWT_ALG: 'RS256', JWT_KEYS_FILE: keyFile(ed) }, 'JWT_KEYS_FILE'],
    [{ JWT_ALG: 'EdDSA', JWT_KEYS_FILE: keyFile([ed[0], { ...ed[1], kid: ed[0].kid }]) }, 'JWT_KEYS_FILE']
  ]
  for (const [env, variable] of cases) {
    const res = spawnSync(process.execPath, [SERVER_ENTRY], { env: { PATH: process.env.PATH, DATABASE_URL: ':memory:', NODE_ENV: 'production', ...env }, encoding: 'utf8', timeout: 90_000 })
    t.equal(res.status, 1, `${JSON.stringify(env).slice(0, 80)}: exits 1`)
    t.match(res.stderr, variable, `names ${variable}`)
    for (const secret of privateParts(ed)) t.notOk(res.stderr.includes(secret), 'prints no key material')
  }
})

t.test('a keys file readable by group or others: one warning at start naming it, its mode and chmod 600 (built server)', async (t) => {
  const ed = generated.get('EdDSA')!
  const target = keyFile([ed[0]])
  const link = join(dir, 'warn-link.json')
  symlinkSync(target, link)
  const warned = (file: string) => loadConfig({ JWT_ALG: 'EdDSA', JWT_KEYS_FILE: file }).jwt.keysFileWarning

  t.equal(warned(target), undefined, '0600: no warning')
  for (const m of [0o640, 0o604, 0o644]) {
    chmodSync(target, m)
    const text = warned(target)
    t.match(text, `is mode 0${m.toString(8)}`, `0${m.toString(8)}: a warning naming the mode`)
    t.match(text, target, 'and the file')
    t.match(text, 'chmod 600', 'and the fix')
  }
  t.match(warned(link), 'is mode 0644', 'through a symlink: the mode of its target')
  chmodSync(target, 0o400)
  t.equal(warned(target), undefined, '0400: no warning')

  // The service itself: the line is in its log at start, once, as a warning, with no key material.
  const started = async (m: number) => {
    chmodSync(target, m)
    const server = await startServer(t, { JWT_ALG: 'EdDSA', JWT_KEYS_FILE: target })
    const deadline = Date.now() + 20_000
    while (!server.output().includes('Server listening')) {
      if (Date.now() > deadline) throw new Error(`no "Server listening" line: ${server.output()}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const out = server.output()
    await server.stop()
    return out
  }
  const loose = await started(0o644)
  const lines = loose.split('\n').filter((line) => line.includes('chmod 600'))
  t.equal(lines.length, 1, `0644: one warning line: ${loose}`)
  const entry = JSON.parse(lines[0] ?? '{}') as { level?: number, msg?: string }
  t.equal(entry.level, 40, 'at level warn')
  t.match(entry.msg, `JWT_KEYS_FILE ${target} is mode 0644`)
  for (const secret of privateParts([ed[0]])) t.notOk(loose.includes(secret), 'no key material in the log')

  const tight = await started(0o600)
  t.notMatch(tight, 'chmod 600', `0600: no warning: ${tight}`)
  t.notMatch(tight, 'readable by group or others')
})

t.test('asymmetric verifier: jose on first sight, then the verified-token cache (exact text, exp re-checked)', async (t) => {
  const NOW = Math.floor(Date.now() / 1000)
  for (const alg of ALGS) {
    const jwk = generated.get(alg)![0]
    const [key] = parseKeySet(JSON.stringify({ keys: [jwk] }), alg)
    const keys = await importVerificationKeys(alg, [key.publicJwk])
    let clock = NOW
    const options = { alg, keys, issuer: 'auth-service', audience: 'auth-service', now: () => clock }
    const verify = createAsymmetricAccessTokenVerifier(options)
    const signed = await new SignJWT({ sub: 'u1', sid: 's1', jti: 'j1' })
      .setProtectedHeader({ alg, typ: 'at+jwt', kid: key.kid })
      .setIssuedAt(NOW).setExpirationTime(NOW + 60).setIssuer('auth-service').setAudience('auth-service')
      .sign(createPrivateKey({ key: jwk as never, format: 'jwk' }))
    // ES256: jose signs high-S half the time; the verifier accepts the low-S form only.
    const token = alg === 'ES256' ? withLowS(signed) : signed

    const [a, b] = [verify(token), verify(token)]
    t.ok(a instanceof Promise && b instanceof Promise, `${alg}: first sight: jose, asynchronously`)
    const [ca, cb] = await Promise.all([a, b])
    t.same(ca, { sub: 'u1', sid: 's1', jti: 'j1', iat: NOW, exp: NOW + 60 }, 'the claims')
    t.same(cb, ca, 'requests that arrived together share the verification')
    t.not(ca, cb, 'each gets its own copy')

    const hit = verify(token)
    t.notOk(hit instanceof Promise, 'then from the cache, at once')
    t.same(hit, ca)
    const lookAlike = token.slice(0, -1) + String.fromCharCode(0x100 + token.charCodeAt(token.length - 1))
    t.equal(verify(lookAlike), null, 'a non-ASCII look-alike of the cached text is refused at once (the cache is keyed by the exact text)')
    t.equal(verify(' ' + token), null)

    clock = NOW + 60
    t.equal(verify(token), null, 'the cached token expires: refused from the cache, at once')
    t.equal(await verify(token), null, 'and by jose afterwards')

    const uncached = createAsymmetricAccessTokenVerifier({ ...options, cacheSize: 0, now: () => NOW })
    t.same(await uncached(token), ca)
    t.ok(uncached(token) instanceof Promise, 'cacheSize 0: jose every time')
  }
})
