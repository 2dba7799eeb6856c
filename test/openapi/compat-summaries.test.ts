import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

// A Swagger reader never saw the "seeds" (the code's name for the Flask services): each compat
// route's summary names the Flask service it comes from, as docs/compat.md does. openapi.json
// is the served document (test/openapi/document.test.ts keeps the two equal).
const doc = JSON.parse(readFileSync(join(__dirname, '..', '..', 'openapi.json'), 'utf8'))
const FLASK = /\(from the Flask JWT Authentication (Template|API Demo)\)/

t.test('compat summaries name the Flask service, never a seed number', (t) => {
  const ops = Object.values(doc.paths as Record<string, Record<string, { summary: string, tags?: string[] }>>)
    .flatMap((item) => Object.values(item))
  const compat = ops.filter((op) => op.summary.includes('Flask') || /\(seed \d+\)/.test(op.summary) || (op.tags ?? []).some((tag) => /compat/i.test(tag)))
  t.ok(compat.length >= 11, `the compat operations are found (${compat.length})`)
  for (const op of compat) t.match(op.summary, FLASK, op.summary)
  t.notOk(ops.some((op) => /seed/i.test(op.summary)), 'no summary says "seed"')
  t.end()
})
