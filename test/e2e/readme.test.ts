import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { startServer } from '../helper'
import { readmeBlocks } from '../readme'

// The README's walk-through, run exactly as written against the built server (npm run build
// first), so that the README cannot drift from the service again.
const run = promisify(execFile)

/** What the script's comments promise: after each `req METHOD PATH ...`, a `# STATUS ...` line. */
function promises (script: string): string[] {
  const lines = script.split('\n')
  const out: string[] = []
  lines.forEach((line, i) => {
    const call = /^req ([A-Z]+) (\/\S*)/.exec(line)
    if (call === null) return
    const status = /^# (\d{3})\b/.exec(lines[i + 1] ?? '')
    if (status === null) throw new Error(`README walk-through: "${line.slice(0, 40)}" has no "# STATUS" comment on the next line`)
    out.push(`${call[1]} ${call[2]} ${status[1]}`)
  })
  return out
}

/** What the script printed: one "METHOD PATH -> STATUS BODY" line per request. */
function printed (stdout: string): string[] {
  return stdout.split('\n').filter(Boolean).map((line) => {
    const m = /^(\S+) (\S+) -> (\d{3}) ?/.exec(line)
    return m === null ? `unexpected output: ${line.slice(0, 80)}` : `${m[1]} ${m[2]} ${m[3]}`
  })
}

t.test('the README walk-through prints the statuses its comments promise', async (t) => {
  const blocks = readmeBlocks('Walk-through (curl)').filter((b) => b.lang === 'sh')
  t.equal(blocks.length, 1, 'one shell block')
  const script = blocks[0].code
  t.match(script, /^BASE=\$\{BASE:-http:\/\/127\.0\.0\.1:3000\}$/m, 'the base URL comes from $BASE, with the default of npm start')
  const expected = promises(script)
  t.ok(expected.length >= 15, `the walk-through makes its requests through req (${expected.length})`)
  t.ok(expected.includes('DELETE /users/me 204'), 'it deletes the account, after a fresh login')

  const server = await startServer(t)
  // mktemp writes here, so that the test sees the script clean up after itself.
  const scratch = mkdtempSync(join(tmpdir(), 'readme-walk-'))
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
  // Twice, under dash (POSIX sh) and bash: the script cleans up after itself, so a second
  // run against the same service must give the same answers.
  // (--norc: bash reads ~/.bashrc when its stdin is a socket, as node's pipes are.)
  for (const [shell, ...args] of [['sh'], ['bash', '--norc']]) {
    const { stdout, stderr } = await run(shell, [...args, '-c', script], {
      env: { PATH: process.env.PATH, BASE: server.url, TMPDIR: scratch },
      timeout: 60_000
    })
    t.same(printed(stdout), expected, `${shell}: every status is the one the README's comment promises`)
    t.equal(stderr, '', `${shell}: nothing on stderr (curl, node)`)
    const lines = stdout.split('\n')
    t.match(lines[0], /^POST \/auth\/register -> 201 \{"id":"[0-9a-f-]{36}","username":"Alice",/, `${shell}: the bodies are printed too`)
    t.ok(lines.some((l) => l === 'POST /auth/introspect -> 200 {"active":false}'), `${shell}: the logged-out token is inactive`)
    t.same(readdirSync(scratch), [], `${shell}: its temporary file is removed`)
  }
})
