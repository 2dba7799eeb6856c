/**
 * `npm run keys -- <command>`: the signing keys of JWT_ALG=EdDSA|ES256|RS256 (JWT_KEYS_FILE).
 * README, "Signing keys and rotation", says when to run which.
 *
 *   generate --alg EdDSA|ES256|RS256 --out FILE   a new key set of one key (never overwrites)
 *   rotate FILE [--stage]    a new key in front: it signs once the instances restart, the others
 *                            keep verifying. --stage: second instead, so it is published and
 *                            verifies everywhere before it signs (then `promote`)
 *   promote FILE KID         move a key to the front: it signs after the next restart
 *   remove FILE KID          drop a key that no longer signs: its tokens stop verifying
 *   list FILE                kid, algorithm and role of each key
 *
 * Files are written with mode 0600, replaced atomically (a temporary file, then a rename), and
 * read back through the same checks as the service's start. Nothing secret is printed.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { algorithmOf, generateSigningJwk, isJwtAlg, KeyFileError, parseKeySet, type AsymmetricAlg } from '../src/signing-keys'

class UsageError extends Error {}

const USAGE = `usage: npm run keys -- generate --alg EdDSA|ES256|RS256 --out FILE
       npm run keys -- rotate FILE [--stage]
       npm run keys -- promote FILE KID
       npm run keys -- remove FILE KID
       npm run keys -- list FILE`

type Jwk = Record<string, unknown> & { kid: string }

const serialise = (keys: Jwk[]) => JSON.stringify({ keys }, null, 2) + '\n'

/** Creates `file` (mode 0600, flag wx: never over an existing file) with `text`, on disk before it returns. */
function writeExclusive (file: string, text: string) {
  const fd = openSync(file, 'wx', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  chmodSync(file, 0o600) // the umask may only have narrowed it; make it exact
}

/**
 * Replaces `file` at once: a reader sees the old set or the new one, never half of one.
 * Through a symlink, the link's target is replaced (a rename over the link itself would
 * turn it into a plain file and leave the target, which the service may read, unchanged).
 */
function replace (path: string, text: string) {
  const file = realpathSync(path)
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    writeExclusive(tmp, text)
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

/** The file's keys as written, after the service's own checks; the algorithm is the first key's. */
function readSet (file: string): { alg: AsymmetricAlg, keys: Jwk[] } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new KeyFileError(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let keys: unknown
  try {
    keys = (JSON.parse(text) as { keys?: unknown }).keys
  } catch {
    throw new KeyFileError(`${file} is not valid JSON`)
  }
  const first = Array.isArray(keys) ? keys[0] as { kty?: unknown, crv?: unknown } | undefined : undefined
  const alg = first === undefined || first === null ? undefined : algorithmOf(first)
  if (alg === undefined) throw new KeyFileError(`${file} must be a JWK Set whose first key is Ed25519, P-256 or RSA`)
  try {
    parseKeySet(text, alg) // what the service's start would say
  } catch (err) {
    if (err instanceof KeyFileError) throw new KeyFileError(`${file} ${err.message}`)
    throw err
  }
  return { alg, keys: keys as Jwk[] }
}

const role = (i: number) => (i === 0 ? 'signs and verifies' : 'verifies')
const describe = (keys: Jwk[]) => keys.map((k, i) => `  ${k.kid}  ${String(k.alg ?? '')}  ${role(i)}`).join('\n')

async function run (argv: string[]): Promise<string> {
  // promote and remove take no options, and a kid (base64url) may begin with "-": their
  // arguments are read as written, as if after "--" (a lone "--" before the KID is skipped).
  const asWritten = argv[0] === 'promote' || argv[0] === 'remove'
  // Help is asked for, not an error: the usage alone, on stdout, exit 0.
  if (argv[0] === 'help' || (!asWritten && argv.some((a) => a === '--help' || a === '-h'))) {
    return USAGE
  }
  const { positionals, values } = parseArgs({
    args: asWritten ? ['--', ...argv.filter((arg, i) => !(arg === '--' && i === 2))] : argv,
    allowPositionals: true,
    strict: true,
    options: { alg: { type: 'string' }, out: { type: 'string' }, stage: { type: 'boolean' } }
  })
  const [command, file, kid, ...rest] = positionals
  const needs = (n: number) => {
    if (positionals.length !== n + 1) throw new UsageError(`${command} takes ${n === 1 ? 'FILE' : 'FILE KID'}`)
  }
  if (rest.length > 0) throw new UsageError('too many arguments')

  switch (command) {
    case 'generate': {
      const alg = values.alg
      if (alg === undefined || !isJwtAlg(alg) || alg === 'HS256') throw new UsageError('generate needs --alg EdDSA, ES256 or RS256')
      if (values.out === undefined || positionals.length !== 1) throw new UsageError('generate needs --out FILE and nothing else')
      const jwk = await generateSigningJwk(alg) as Jwk
      try {
        writeExclusive(values.out, serialise([jwk]))
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') throw new KeyFileError(`${values.out} exists; use rotate to add a key to it`)
        const folder = dirname(resolve(values.out))
        if (code === 'ENOENT') {
          throw new KeyFileError(`cannot write ${values.out}: the folder ${folder} does not exist. ` +
            `Create it first (mkdir -p ${folder}; readable by the service's user only) or choose another --out.`)
        }
        if (code === 'EACCES') {
          throw new KeyFileError(`cannot write ${values.out}: no permission to write in ${folder}. ` +
            'Run as a user who may (the service\'s user), or choose another --out.')
        }
        throw err
      }
      return `wrote ${values.out} (mode 0600): one ${alg} key, kid ${jwk.kid}\nstart the service with JWT_ALG=${alg} JWT_KEYS_FILE=${values.out}`
    }
    case 'rotate': {
      needs(1)
      const { alg, keys } = readSet(file)
      const jwk = await generateSigningJwk(alg) as Jwk
      const next = values.stage === true ? [keys[0], jwk, ...keys.slice(1)] : [jwk, ...keys]
      replace(file, serialise(next))
      return `${values.stage === true ? 'staged' : 'added'} ${alg} key ${jwk.kid} in ${file}:\n${describe(next)}\n` +
        (values.stage === true ? `restart every instance, wait for the JWKS cache (5 min), then: npm run keys -- promote ${file} ${jwk.kid}` : 'restart every instance to sign with it')
    }
    case 'promote': {
      needs(2)
      const { keys } = readSet(file)
      const at = keys.findIndex((k) => k.kid === kid)
      if (at < 0) throw new KeyFileError(`${file} has no key ${kid}`)
      const next = [keys[at], ...keys.filter((_, i) => i !== at)]
      replace(file, serialise(next))
      return `${kid} now signs (after a restart):\n${describe(next)}`
    }
    case 'remove': {
      needs(2)
      const { keys } = readSet(file)
      const at = keys.findIndex((k) => k.kid === kid)
      if (at < 0) throw new KeyFileError(`${file} has no key ${kid}`)
      if (at === 0) throw new KeyFileError(`key ${kid} signs: promote another key first (or rotate)`)
      const next = keys.filter((_, i) => i !== at)
      replace(file, serialise(next))
      return `removed ${kid} (its tokens stop verifying once the instances restart):\n${describe(next)}`
    }
    case 'list': {
      needs(1)
      return describe(readSet(file).keys)
    }
  }
  throw new UsageError(command === undefined ? 'no command' : `unknown command ${command}`)
}

if (require.main === module) {
  run(process.argv.slice(2)).then((out) => {
    process.stdout.write(out + '\n')
  }, (err) => {
    if (err instanceof UsageError || String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}\n`)
      process.exitCode = 2
    } else if (err instanceof KeyFileError) {
      process.stderr.write(`${err.message}\n`)
      process.exitCode = 1
    } else {
      process.stderr.write(`${(err as Error).message}\n`)
      process.exitCode = 1
    }
  })
}
