import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const PACKAGE_DIR = join(__dirname, '..')
const ROOT_MODULES = join(PACKAGE_DIR, '..', '..', 'node_modules')

/** The version the host repo has installed, so that the downstream install needs nothing new. */
function installedVersion (name: string): string {
  return JSON.parse(readFileSync(join(ROOT_MODULES, name, 'package.json'), 'utf8')).version
}

/**
 * Packs the package (`npm pack` of its build) and installs the tarball into a fresh
 * directory outside the repository, next to fastify and prom-client, as a user would. The
 * example server is copied in: what runs there can reach nothing of this repository.
 */
export async function installFromTarball (): Promise<{ dir: string, tarball: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'verifier-downstream-'))
  // The package's build (its prepack script: tsc -p tsconfig.build.json), but into a copy of
  // its own: test files run two at a time and must not write one dist/ together.
  const stage = mkdtempSync(join(tmpdir(), 'verifier-pack-'))
  await run(process.execPath, [join(ROOT_MODULES, 'typescript', 'bin', 'tsc'), '-p', join(PACKAGE_DIR, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')])
  for (const file of ['package.json', 'README.md']) copyFileSync(join(PACKAGE_DIR, file), join(stage, file))
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: stage, maxBuffer: 16 << 20 })
  const tarball = join(dir, JSON.parse(stdout.slice(stdout.indexOf('[')))[0].filename)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'downstream-api', private: true, version: '1.0.0' }))
  // --prefer-offline: the packages are in the npm cache since the repository's own install.
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball,
    `fastify@${installedVersion('fastify')}`, `prom-client@${installedVersion('prom-client')}`], { cwd: dir, maxBuffer: 16 << 20 })
  copyFileSync(join(PACKAGE_DIR, 'example', 'server.js'), join(dir, 'server.js'))
  return { dir, tarball }
}

export interface Downstream {
  url: string
  child: ChildProcess
  output: () => string
  stop: () => Promise<void>
  /** GET with an optional bearer token: status and body */
  get: (path: string, token?: string) => Promise<{ status: number, body: any, headers: Headers }>
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Starts the installed example app as its own process and waits until it listens (or exits). */
export async function startDownstream (dir: string, env: Record<string, string>): Promise<Downstream> {
  const port = await freePort()
  const child = spawn(process.execPath, ['server.js'], {
    cwd: dir,
    env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`downstream exited with ${child.exitCode}: ${out}`)
    try {
      if ((await fetch(`${url}/health`)).status === 200) break
    } catch {}
    if (Date.now() > deadline) { await stop(); throw new Error(`downstream did not start: ${out}`) }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const get = async (path: string, token?: string) => {
    const res = await fetch(`${url}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    const text = await res.text()
    let body: unknown = text
    try { body = JSON.parse(text) } catch {}
    return { status: res.status, body, headers: res.headers }
  }
  return { url, child, output: () => out, stop, get }
}
