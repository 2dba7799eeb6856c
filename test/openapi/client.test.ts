import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { test } from 'tap'
import ts from 'typescript'
import { OPENAPI_FILE } from '../../scripts/write-openapi'
import { startServer, uniqueName } from '../helper'
import { readmeBlocks } from '../readme'

const run = promisify(execFile)
const ROOT = join(__dirname, '..', '..')
const BIN = join(ROOT, 'node_modules', '.bin')
const PROGRAM = join(__dirname, 'fixtures', 'client-program.ts.txt')
const EXAMPLE = join(ROOT, 'examples', 'client')

/** Type-checks the files with the compiler API, strict; returns the diagnostics as text. */
function typeCheck (files: string[]): string[] {
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: ['node'],
    skipLibCheck: true
  })
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n')
    if (d.file === undefined || d.start === undefined) return text
    const { line } = d.file.getLineAndCharacterOfPosition(d.start)
    return `${d.file.fileName}:${line + 1}: ${text}`
  })
}

test('a client generated from openapi.json type-checks and works over real HTTP', async (t) => {
  // Outside the repository, so nothing generated can reach the repo's own type-check;
  // node_modules is linked so that the program resolves openapi-fetch as any client would.
  const dir = mkdtempSync(join(tmpdir(), 'openapi-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')

  await run(join(BIN, 'openapi-typescript'), [OPENAPI_FILE, '--output', join(dir, 'schema.d.ts')])
  const generated = readFileSync(join(dir, 'schema.d.ts'), 'utf8')
  t.match(generated, /"\/auth\/login": \{/, 'the generated types cover /auth/login')
  copyFileSync(PROGRAM, join(dir, 'program.ts'))

  await t.test('the program type-checks against the generated types', async (t) => {
    t.same(typeCheck([join(dir, 'program.ts')]), [], 'no type errors (and every @ts-expect-error is needed)')
  })

  await t.test('the types catch wrong field names at compile time', async (t) => {
    // Without its @ts-expect-error lines the program must fail, on exactly those names:
    // an expected error that some other mistake on the line satisfied would prove nothing.
    const source = readFileSync(PROGRAM, 'utf8')
    t.equal(source.match(/\/\/ @ts-expect-error/g)?.length, 2, 'the program keeps its two deliberate typos')
    const unguarded = join(dir, 'unguarded.ts')
    writeFileSync(unguarded, source.replace(/^\s*\/\/ @ts-expect-error.*$/gm, ''))
    const errors = typeCheck([unguarded]).join('\n')
    t.match(errors, /'acess_token' does not exist on type/, 'misspelt response field')
    t.match(errors, /'usernme' does not exist in type/, 'misspelt request field')
  })

  await t.test('the program passes against the started server', async (t) => {
    // With the revocation feed on, as the committed document is written (scripts/write-openapi.ts).
    const server = await startServer(t, { REVOCATION_FEED_TOKEN: 'client-test-feed-token-of-32-characters' })
    // The built server, too, serves exactly the committed document.
    const served = await (await fetch(`${server.url}/docs/json`)).json()
    t.same(served, JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')), 'the server serves openapi.json')

    const username = uniqueName('client')
    const password = 'generated client password 1'
    const { stdout } = await run(join(BIN, 'tsx'), [join(dir, 'program.ts')], {
      cwd: dir,
      env: { PATH: process.env.PATH, BASE_URL: server.url, CLIENT_USERNAME: username, CLIENT_PASSWORD: password },
      timeout: 60_000
    })
    const { steps, seen } = JSON.parse(stdout) as {
      steps: Array<{ step: string, status: number, body: any }>
      seen: Record<string, unknown>
    }
    const step = (name: string) => {
      const found = steps.find((s) => s.step === name)
      if (found === undefined) throw new Error(`the program did not run step ${name}: ${stdout}`)
      return found
    }
    t.same(steps.map((s) => s.step), ['register', 'login', 'login with a wrong password', 'me', 'refresh', 'logout', 'me after logout'])

    const register = step('register')
    t.equal(register.status, 201)
    t.equal(register.body.username, username)
    t.match(register.body.id, /^[0-9a-f-]{36}$/)

    const login = step('login')
    t.equal(login.status, 200)
    t.match(login.body, { token_type: 'Bearer', access_token: /^[\w-]+\.[\w-]+\.[\w-]+$/, refresh_token: String, expires_in: Number, refresh_expires_in: Number })
    t.same(seen, { expiresIn: login.body.expires_in, tokenType: 'Bearer', message: 'Invalid username or password', meName: username }, 'the typed fields read what the server sent')

    t.equal(step('login with a wrong password').status, 401)
    t.match(step('login with a wrong password').body, { statusCode: 401, message: 'Invalid username or password' })

    t.equal(step('me').status, 200)
    t.match(step('me').body, { id: register.body.id, username })

    const refresh = step('refresh')
    t.equal(refresh.status, 200)
    t.match(refresh.body, { token_type: 'Bearer', access_token: String, refresh_token: String })
    t.not(refresh.body.refresh_token, login.body.refresh_token, 'the refresh token was rotated')

    t.equal(step('logout').status, 204)
    t.equal(step('logout').body, null, '204: no body')

    t.equal(step('me after logout').status, 401, 'the logged-out access token is dead at once')
    t.match(step('me after logout').body, { statusCode: 401, error: 'Unauthorized' })
  })
})

test('the README\'s "Generating a client" steps work as written', async (t) => {
  const blocks = readmeBlocks('Generating a client')
  const commands = blocks.filter((b) => b.lang === 'sh')
  const shown = blocks.filter((b) => b.lang === 'ts')
  t.equal(commands.length, 1, 'one block of commands')
  t.equal(shown.length, 1, 'one program')
  t.equal(shown[0].code, readFileSync(join(EXAMPLE, 'try-client.ts'), 'utf8'), 'the README shows examples/client/try-client.ts as it is')

  // Where the README generates into: ignored by git (and by eslint, see eslint.config.js),
  // so that following the README leaves `git status`, `npm run lint` and `npm test` clean.
  const out = / -o (\S+)/.exec(commands[0].code)?.[1]
  t.equal(out, 'examples/client/auth-service.d.ts', 'the types go into examples/client/')
  await t.resolves(run('git', ['check-ignore', '-q', out!], { cwd: ROOT }), 'git ignores the generated file')

  // A scratch copy of what the commands touch, so that the test never writes into the repo.
  const dir = mkdtempSync(join(tmpdir(), 'readme-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  copyFileSync(OPENAPI_FILE, join(dir, 'openapi.json'))
  cpSync(EXAMPLE, join(dir, 'examples', 'client'), { recursive: true, filter: (src) => !src.endsWith('auth-service.d.ts') })

  const server = await startServer(t)
  const { stdout } = await run('sh', ['-ec', commands[0].code], {
    cwd: dir,
    env: { ...process.env, BASE: server.url },
    timeout: 90_000
  })
  const printed = stdout.split('\n').filter((l) => /^(register|login|me) /.test(l))
  t.equal(printed.length, 3, `the program printed its three steps: ${stdout}`)
  const [register, login, me] = printed
  const name = /^register 201 (client_\d+)$/.exec(register)?.[1]
  t.ok(name, `register: 201 and the new username (${register})`)
  t.equal(login, 'login 200 Bearer', 'login: 200, a bearer TokenPair')
  t.equal(me, `me 200 ${name}`, 'me: 200, the same user')
})
