/**
 * Child processes of the bench: each is started in its own process group, tracked, and
 * killed (the whole group, by its id) when the bench ends, fails or is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, readdirSync } from 'node:fs'

const live = new Set<ChildProcess>()

function killGroup (child: ChildProcess, signal: NodeJS.Signals) {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try { child.kill(signal) } catch {}
  }
}

/** Last resort, on any exit of the bench: SIGKILL every group still alive. */
process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL')
})

export interface Child {
  name: string
  proc: ChildProcess
  pid: number
  output (): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop (graceMs?: number): Promise<void>
  exited (): boolean
}

export function startChild (name: string, command: string, args: string[], env: Record<string, string | undefined>): Child {
  const proc = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true })
  live.add(proc)
  let out = ''
  const keep = (d: Buffer) => {
    out += d.toString()
    if (out.length > 200_000) out = out.slice(-100_000)
  }
  proc.stdout!.on('data', keep)
  proc.stderr!.on('data', keep)
  proc.stdin!.on('error', () => {})
  const exited = () => proc.exitCode !== null || proc.signalCode !== null
  proc.once('exit', () => { live.delete(proc) })
  return {
    name,
    proc,
    pid: proc.pid!,
    output: () => out,
    exited,
    async stop (graceMs = 5000) {
      if (exited()) { live.delete(proc); return }
      const gone = once(proc, 'exit')
      killGroup(proc, 'SIGTERM')
      const timer = setTimeout(() => killGroup(proc, 'SIGKILL'), graceMs)
      await gone
      clearTimeout(timer)
      // cluster workers share the group: make sure none outlives its primary
      killGroup(proc, 'SIGKILL')
      live.delete(proc)
    }
  }
}

export async function stopAll () {
  await Promise.all([...live].map(async (proc) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const gone = once(proc, 'exit')
    killGroup(proc, 'SIGTERM')
    const timer = setTimeout(() => killGroup(proc, 'SIGKILL'), 3000)
    await gone
    clearTimeout(timer)
  }))
}

// the tests' own: one way to find a port
export { freePort } from '../../test/support/ports'

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resident set size of one process, in MB (VmRSS of /proc/<pid>/status). */
export function rssMb (pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status)
    return m ? Number(m[1]) / 1024 : null
  } catch {
    return null
  }
}

/** User + system CPU time of one process, in seconds. */
export function cpuSeconds (pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in clock ticks (100 Hz)
  } catch {
    return null
  }
}

/** The direct children of a process (cluster workers of a primary). */
export function childPids (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {}
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) pids.push(Number(entry))
    } catch {}
  }
  return pids
}
