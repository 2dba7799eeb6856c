import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import type { Test } from 'tap'
import { testEnv } from './app'
import { freePort, waitFor } from './ports'

// The built service (dist/) as a process of its own, as production runs it.

export const SERVER_ENTRY = join(__dirname, '..', '..', 'dist', 'src', 'server.js')

/**
 * Node's flags from `npm start` (package.json: `node <flags> dist/src/server.js`), so that a
 * test server's heap is sized as production's. The smaller young generation also costs less
 * at start: 3.1 instead of 3.4 CPU-seconds, 160 instead of 210 MB (9 starts, 2026-12-04).
 */
export const START_FLAGS: string[] = (() => {
  const start = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
  const words = start.split(/\s+/)
  return words.slice(words.indexOf('node') + 1, words.indexOf('dist/src/server.js'))
})()

// V8's code cache (Node's NODE_COMPILE_CACHE), shared by every server a test run starts: each
// start compiles the same modules, and the cache saved 0.22 of 3.4 CPU-seconds a start
// (8 starts, 2026-12-04). The service itself does not turn it on: where a production host
// keeps compiled code is its operator's choice.
const COMPILE_CACHE = join(tmpdir(), 'auth-service-test-compile-cache')

export interface RunningServer {
  url: string
  port: number
  child: ChildProcess
  /** what the process wrote, for assertions on logs */
  output: () => string
  /** SIGTERM, then the exit code */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * Starts the built service (`npm run build` first; `npm test` does) as its own process on a
 * free port, with a fresh SQLite file unless DATABASE_URL is given, and waits for /health.
 */
export async function startServer (t: Test, env: Record<string, string | undefined> = {}, cwd?: string): Promise<RunningServer> {
  const server = await spawnServer(t, env, cwd)
  await server.ready()
  return server
}

/**
 * The process of startServer, not waited for: `ready()` waits for /health (up to 90 s), for
 * a test that acts while the service is still starting.
 */
export async function spawnServer (
  t: Test, env: Record<string, string | undefined> = {}, cwd?: string
): Promise<RunningServer & { ready: () => Promise<void> }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'auth-service-'))
  const child = spawn(process.execPath, [...START_FLAGS, SERVER_ENTRY], {
    env: {
      PATH: process.env.PATH,
      NODE_COMPILE_CACHE: COMPILE_CACHE,
      ...testEnv({ DATABASE_URL: `file:${join(dir, 'auth.db')}`, LOG_LEVEL: 'info' }),
      PORT: String(port),
      HOST: '127.0.0.1',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const url = `http://127.0.0.1:${port}`
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    child.kill(signal)
    const [code] = await once(child, 'exit')
    return code as number | null
  }
  t.teardown(() => stop('SIGKILL'))
  const ready = async () => {
    // Only a bound for a server that never answers: on a loaded 2-core machine (load 17) one
    // start took 17 s, and a 20 s bound failed every e2e file.
    const deadline = Date.now() + 90_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${out}`)
      // Our process must hold the port: test files run side by side, and another process's
      // server handed the same free port would answer /health for a child still starting.
      if (listensOn(child.pid!, port)) {
        try {
          const res = await fetch(`${url}/health`)
          if (res.status === 200 || res.status === 503) return
        } catch {}
      }
      if (Date.now() > deadline) throw new Error(`server did not start: ${out}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return { url, port, child, output: () => out, stop, ready }
}

/**
 * The JSON log lines a server has written so far, from offset `from` of its output: complete
 * lines only, since a pipe may deliver half of one.
 */
export function logLines (server: { output: () => string }, from = 0): Array<Record<string, any>> {
  const out = server.output()
  return out.slice(from, out.lastIndexOf('\n') + 1).split('\n')
    .filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
}

/**
 * The first log line `match` accepts, waited for: the line comes through a pipe, and the test
 * may read an answer the server sent after it (on a socket) before the pipe's bytes.
 */
export async function logLine (
  server: { output: () => string }, match: (line: Record<string, any>) => boolean, ms = 60_000
): Promise<Record<string, any>> {
  let found: Record<string, any> | undefined
  await waitFor(async () => (found = logLines(server).find(match)) !== undefined, ms)
  return found!
}

/** Whether process `pid` holds the listening IPv4 socket on `port` (Linux: /proc/net/tcp). */
function listensOn (pid: number, port: number): boolean {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const inodes = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(local) && f[3] === '0A') // 0A: LISTEN
    .map((f) => `socket:[${f[9]}]`)
  if (inodes.length === 0) return false
  let fds: string[]
  try { fds = readdirSync(`/proc/${pid}/fd`) } catch { return false }
  return fds.some((fd) => { try { return inodes.includes(readlinkSync(`/proc/${pid}/fd/${fd}`)) } catch { return false } })
}
