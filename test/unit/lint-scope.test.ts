import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

// `npm run lint` (part of `npm test`) lints what the project owns, by name: a stray script a
// user drops into the checkout must not fail the tests, and no file of ours may fall outside.
const ROOT = join(__dirname, '..', '..')
const script: string = require('../../package.json').scripts.lint

t.test('the lint script names its paths: not the whole checkout', (t) => {
  const [bin, ...paths] = script.split(/\s+/)
  t.equal(bin, 'eslint')
  t.notOk(paths.some((p) => p === '.' || p === './' || p.includes('*')), `no "." or glob: ${script}`)
  t.end()
})

t.test('every committed JavaScript or TypeScript file is under one of them', (t) => {
  const paths = script.split(/\s+/).slice(1)
  const files = execFileSync('git', ['ls-files', '*.ts', '*.js', '*.mjs', '*.cjs'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean)
  t.ok(files.length > 50, `git lists the project's files (${files.length})`)
  const outside = files.filter((f) => !paths.some((p) => f === p || f.startsWith(`${p}/`)))
  t.same(outside, [], 'no committed source file escapes the lint')
  t.end()
})
