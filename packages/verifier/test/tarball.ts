import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
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

/** What the installed tarball is made of: the package's own files and the host's versions. */
function sourcesDigest (): string {
  const hash = createHash('sha256')
  const files = readdirSync(PACKAGE_DIR, { recursive: true, encoding: 'utf8' })
    .filter((f) => !/^(test|dist|node_modules)(\/|$)/.test(f) && statSync(join(PACKAGE_DIR, f)).isFile())
    .sort()
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(join(PACKAGE_DIR, file))).update('\0')
  for (const name of ['fastify', 'prom-client', 'typescript']) hash.update(`${name}@${installedVersion(name)}\0`)
  return hash.digest('hex').slice(0, 16)
}

/**
 * Packs the package (`npm pack` of its build) and installs the tarball into a directory
 * outside the repository, next to fastify and prom-client, as a user would. The example
 * server is copied in: what runs there can reach nothing of this repository.
 *
 * Made once for each version of the package's files and shared by every test process that
 * asks (three files, two at a time): a build, pack and install costs about 9 CPU-seconds. A
 * process builds into a folder of its own and renames it into place; when two race, the
 * second rename fails and that process uses the first one's.
 */
export async function installFromTarball (): Promise<{ dir: string, tarball: string }> {
  const dir = join(tmpdir(), `verifier-downstream-${sourcesDigest()}`)
  const marker = join(dir, 'tarball-name')
  if (!existsSync(marker)) {
    const work = mkdtempSync(join(tmpdir(), 'verifier-install-'))
    await buildAndInstall(work)
    try {
      renameSync(work, dir)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err
      rmSync(work, { recursive: true, force: true })
    }
  }
  return { dir, tarball: join(dir, readFileSync(marker, 'utf8')) }
}

async function buildAndInstall (dir: string): Promise<void> {
  // The package's build (its prepack script: tsc -p tsconfig.build.json), but into a copy of
  // its own: test files run two at a time and must not write one dist/ together.
  const stage = mkdtempSync(join(tmpdir(), 'verifier-pack-'))
  await run(process.execPath, [join(ROOT_MODULES, 'typescript', 'bin', 'tsc'), '-p', join(PACKAGE_DIR, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')])
  for (const file of ['package.json', 'README.md']) copyFileSync(join(PACKAGE_DIR, file), join(stage, file))
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: stage, maxBuffer: 16 << 20 })
  const tarball: string = JSON.parse(stdout.slice(stdout.indexOf('[')))[0].filename
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'downstream-api', private: true, version: '1.0.0' }))
  // --prefer-offline: the packages are in the npm cache since the repository's own install.
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, tarball),
    `fastify@${installedVersion('fastify')}`, `prom-client@${installedVersion('prom-client')}`], { cwd: dir, maxBuffer: 16 << 20 })
  copyFileSync(join(PACKAGE_DIR, 'example', 'server.js'), join(dir, 'server.js'))
  rmSync(stage, { recursive: true, force: true })
  // written last: a folder with this file in it is complete
  writeFileSync(join(dir, 'tarball-name'), tarball)
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
    let res: Response
    try {
      // A bound far above any answer (the default is undici's 300 s), so that a request the
      // app never answers fails with what the app was doing, not a bare "fetch failed".
      res = await fetch(`${url}${path}`, {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(60_000)
      })
    } catch (err) {
      const state = child.exitCode !== null || child.signalCode !== null
        ? `exited (${child.exitCode ?? child.signalCode})`
        : 'running'
      const cause = (err as Error & { cause?: Error }).cause?.message ?? ''
      throw new Error(`GET ${path} on the downstream app failed: ${(err as Error).message} ${cause}; ` +
        `the app is ${state}; its last output:\n${out.slice(-4000)}`)
    }
    const text = await res.text()
    let body: unknown = text
    try { body = JSON.parse(text) } catch {}
    return { status: res.status, body, headers: res.headers }
  }
  return { url, child, output: () => out, stop, get }
}
