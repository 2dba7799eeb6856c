import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export const README = join(__dirname, '..', 'README.md')

/**
 * The fenced code blocks of one section of README.md (from its `## heading` to the next
 * `## `), in order, with their info string (`sh`, `ts`, ...): tests run them as written.
 */
export function readmeBlocks (heading: string): Array<{ lang: string, code: string }> {
  const text = readFileSync(README, 'utf8')
  const start = text.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`README.md has no section "## ${heading}"`)
  const next = text.indexOf('\n## ', start + 1)
  const section = text.slice(start, next === -1 ? undefined : next)
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], code: m[2] }))
}
