/**
 * The results tables of README.md and bench/README.md, generated from bench/results.json
 * (the committed full run), so that the documents always show that file.
 *
 *   npx tsx bench/tables.ts           rewrite both tables from bench/results.json
 *   npx tsx bench/tables.ts --check   exit 1 if either differs (test/unit/bench-tables.test.ts does this too)
 *
 * `npm run bench -- --save` calls updateReadmes after writing bench/results.json.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { replaceResultsBlock, resultsBlock, type Results } from './lib/report'

const ROOT = join(__dirname, '..')
/** The committed run, replaced only by `npm run bench -- --save`. */
export const COMMITTED_RESULTS = join(__dirname, 'results.json')
/** Where every other run writes (bench/.tmp is ignored by git and eslint). */
export const LATEST_RESULTS = join(__dirname, '.tmp', 'results.json')
export const READMES = [join(ROOT, 'README.md'), join(__dirname, 'README.md')]

export function readResults (file = COMMITTED_RESULTS): Results {
  return JSON.parse(readFileSync(file, 'utf8')) as Results
}

/** Each README as it should be: its results block regenerated from `results`. */
export function expectedReadmes (results: Results = readResults()): Array<{ file: string, current: string, expected: string }> {
  const block = resultsBlock(results)
  return READMES.map((file) => {
    const current = readFileSync(file, 'utf8')
    return { file, current, expected: replaceResultsBlock(current, block) }
  })
}

export function updateReadmes (results: Results = readResults()): string[] {
  const changed: string[] = []
  for (const { file, current, expected } of expectedReadmes(results)) {
    if (current === expected) continue
    writeFileSync(file, expected)
    changed.push(file)
  }
  return changed
}

if (require.main === module) {
  if (process.argv.includes('--check')) {
    const stale = expectedReadmes().filter((r) => r.current !== r.expected).map((r) => r.file)
    for (const file of stale) process.stderr.write(`${file}: its bench table differs from bench/results.json (npx tsx bench/tables.ts)\n`)
    process.exitCode = stale.length > 0 ? 1 : 0
  } else {
    const changed = updateReadmes()
    process.stdout.write(changed.length > 0 ? `updated ${changed.join(', ')}\n` : 'tables already match bench/results.json\n')
  }
}
