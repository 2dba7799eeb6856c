import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { startServer } from '../helper'
import { readmeBlocks } from '../readme'
import { awayFromStepBoundary } from '../support/accounts'

// The README's accounts walk-through, run as written against the built server (npm run
// build first), `npm run admin` included: every status is the one its comment promises.
const run = promisify(execFile)
const ROOT = join(__dirname, '..', '..')

function promises (script: string): string[] {
  const lines = script.split('\n')
  const out: string[] = []
  lines.forEach((line, i) => {
    const call = /^req ([A-Z]+) "?(\/[^\s"?]*)/.exec(line)
    if (call === null) return
    const status = /^# (\d{3})\b/.exec(lines[i + 1] ?? '')
    if (status === null) throw new Error(`"${line.slice(0, 40)}" has no "# STATUS" comment on the next line`)
    out.push(`${call[1]} ${call[2].replace(/\$\w+/g, 'ID')} ${status[1]}`)
  })
  return out
}

t.test('the README accounts walk-through prints the statuses its comments promise', async (t) => {
  const blocks = readmeBlocks('Accounts: two-factor and administration').filter((b) => b.lang === 'sh')
  t.equal(blocks.length, 1, 'one shell block')
  const script = blocks[0].code
  const expected = promises(script)
  t.ok(expected.length >= 25, `its requests go through req (${expected.length})`)
  const dir = mkdtempSync(join(tmpdir(), 'readme-accounts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const databaseUrl = `file:${join(dir, 'auth.db')}`
  const server = await startServer(t, { DATABASE_URL: databaseUrl })
  // Twice: the block cleans up after itself. Each run starts well inside a 30 s TOTP step,
  // so the codes it computes belong to the steps it means.
  for (const round of [1, 2]) {
    await awayFromStepBoundary()
    const { stdout, stderr } = await run('sh', ['-c', script], {
      env: { PATH: process.env.PATH, BASE: server.url, DATABASE_URL: databaseUrl, TMPDIR: dir },
      cwd: ROOT,
      timeout: 120_000
    })
    const lines = stdout.split('\n').filter(Boolean)
    t.ok(lines.includes('Root is an admin'), `${round}: npm run admin granted the role`)
    const printed = lines.filter((l) => l !== 'Root is an admin').map((line) => {
      const m = /^(\S+) (\S+) -> (\d{3}) ?/.exec(line)
      return m === null ? `unexpected output: ${line.slice(0, 80)}` : `${m[1]} ${m[2].split('?')[0].replace(/[0-9a-f-]{36}/, 'ID')} ${m[3]}`
    })
    t.same(printed, expected, `${round}: every status is the one the README's comment promises`)
    t.equal(stderr, '', `${round}: nothing on stderr`)
  }
})
