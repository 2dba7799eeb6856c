/** Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions and packages by self time. */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
}
interface Profile { nodes: ProfileNode[], samples: number[], startTime: number, endTime: number }

export interface SelfTime { name: string, where: string, ms: number, share: number }

function where (url: string, root: string): string {
  if (url === '') return ''
  const path = url.replace(/^file:\/\//, '')
  const nm = path.lastIndexOf('/node_modules/')
  if (nm !== -1) return path.slice(nm + 1)
  return path.startsWith(root) ? path.slice(root.length + 1) : path
}

function packageOf (url: string, root: string): string {
  if (url === '') return '(native / V8)'
  if (url.startsWith('node:')) return 'node core'
  const w = where(url, root)
  const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(w)
  if (m) return m[1]
  return w.startsWith('dist/') ? 'service (dist/)' : w
}

export function summarise (file: string, root: string, top = 25) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const totalMs = (p.endTime - p.startTime) / 1000
  const perSample = totalMs / Math.max(1, p.samples.length)
  const byFn = new Map<string, SelfTime>()
  const byPkg = new Map<string, number>()
  let busy = 0
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0
    if (hits === 0) continue
    const ms = hits * perSample
    const name = n.callFrame.functionName || '(anonymous)'
    if (name !== '(idle)' && name !== '(program)') busy += ms
    const w = where(n.callFrame.url, root)
    const key = `${name} ${w}:${n.callFrame.lineNumber + 1}`
    const e = byFn.get(key) ?? { name, where: w === '' ? '' : `${w}:${n.callFrame.lineNumber + 1}`, ms: 0, share: 0 }
    e.ms += ms
    byFn.set(key, e)
    const pkg = name === '(idle)' || name === '(program)' || name === '(garbage collector)' ? name : packageOf(n.callFrame.url, root)
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + ms)
  }
  const fns = [...byFn.values()].filter((e) => e.name !== '(idle)').sort((a, b) => b.ms - a.ms).slice(0, top)
  for (const f of fns) f.share = f.ms / busy
  const pkgs = [...byPkg.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).map(([name, ms]) => ({ name, ms, share: ms / busy }))
  return { totalMs, busyMs: busy, functions: fns, packages: pkgs }
}
