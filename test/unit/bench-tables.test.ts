import { execFile } from 'node:child_process'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { COMMITTED_RESULTS, expectedReadmes, LATEST_RESULTS, readResults } from '../../bench/tables'
import { BEGIN_MARK, replaceResultsBlock, resultsBlock, table, type Row } from '../../bench/lib/report'

const run = promisify(execFile)
const ROOT = join(__dirname, '..', '..')

t.test('the READMEs show the committed bench/results.json', async (t) => {
  const results = readResults()
  for (const { file, current, expected } of expectedReadmes(results)) {
    t.ok(current.includes(BEGIN_MARK), `${relative(ROOT, file)} has the generated block`)
    t.equal(current, expected, `${relative(ROOT, file)}: the table is the one generated from bench/results.json (npx tsx bench/tables.ts)`)
  }
  // The block holds the file's numbers: the memory-store `me` row, as the file has it.
  const me = results.scenarios.find((r) => r.name === 'me' && r.store === 'memory' && r.db !== 'postgres')!
  t.match(resultsBlock(results), new RegExp(`^me +sqlite +memory +1 +${Math.round(me.rps)} `, 'm'))
  t.throws(() => replaceResultsBlock('# no markers\n', 'x'), /markers are missing/)
})

t.test('rows name their database; rows saved before --db existed were SQLite', async (t) => {
  const base: Row = { name: 'me', store: 'memory', rps: 1000, p50_ms: 1, p99_ms: 2, errors: 0, non2xx: 0, reference: null, ratio: null, workers: 1, reference_rps: null, requests: 1, connections: 1, unexpected: 0 }
  const lines = table([base, { ...base, db: 'postgres', rps: 900 }, { ...base, db: 'sqlite', rps: 800 }]).split('\n')
  t.match(lines[0], /^scenario +db +store +workers /)
  t.match(lines[2], /^me +sqlite +memory +1 +1000 /)
  t.match(lines[3], /^me +postgres +memory +1 +900 /)
  t.match(lines[4], /^me +sqlite +memory +1 +800 /)
})

t.test('per-algorithm runs (--alg X --save) follow the main table, each naming its own run', async (t) => {
  const results = readResults()
  const row: Row = { name: 'reject', store: 'memory', rps: 4321, p50_ms: 1, p99_ms: 2, errors: 0, non2xx: 10, reference: 'ceiling', ratio: 0.5, workers: 1, reference_rps: 8642, requests: 10, connections: 32, unexpected: 0, expected_status: 401 }
  const block = resultsBlock({ ...results, algorithms: { ES256: { machine: { ...results.machine, commit: 'abc1234' }, scenarios: [row] } } })
  const at = block.indexOf('JWT_ALG=ES256')
  t.ok(at > block.indexOf(table(results.scenarios).split('\n')[2]), 'after the main table')
  t.match(block.slice(at), /^JWT_ALG=ES256, `npm run bench -- --alg ES256 --save`, run of .*commit abc1234/)
  t.match(block.slice(at), /^reject +sqlite +memory +1 +4321 /m, 'with its rows')
  t.notMatch(resultsBlock({ ...results, algorithms: undefined }), /JWT_ALG=/, 'nothing when no algorithm was run')
})

t.test('a bench run writes where git does not look, unless --save', async (t) => {
  // exit 0 = ignored; a run without --save must leave `git status` clean.
  await t.resolves(run('git', ['check-ignore', '-q', LATEST_RESULTS], { cwd: ROOT }), `${relative(ROOT, LATEST_RESULTS)} is ignored by git`)
  await t.rejects(run('git', ['check-ignore', '-q', COMMITTED_RESULTS], { cwd: ROOT }), `${relative(ROOT, COMMITTED_RESULTS)} is not ignored`)
  await t.resolves(run('git', ['ls-files', '--error-unmatch', COMMITTED_RESULTS], { cwd: ROOT }), 'and it is committed')
})
