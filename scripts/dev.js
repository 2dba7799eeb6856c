'use strict'
// `npm run dev`: the service from source under `tsx watch`, with rate limits OFF unless
// RATE_LIMITS is set (in the environment or in .env). On localhost every request comes from
// one IP, so 50 failed logins while trying things out would lock the developer out for
// 15 minutes. The warning is loud so that nobody mistakes this for a production setting.
const { spawn } = require('node:child_process')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { parseEnv } = require('node:util')

const root = join(__dirname, '..')

/** RATE_LIMITS as the service will see it: the real environment wins over .env. */
function configuredRateLimits () {
  if (process.env.RATE_LIMITS) return process.env.RATE_LIMITS
  try {
    return parseEnv(readFileSync(join(process.cwd(), '.env'), 'utf8')).RATE_LIMITS || undefined
  } catch (err) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
}

const env = { ...process.env }
const configured = configuredRateLimits()
if (configured === undefined) env.RATE_LIMITS = 'off'
if ((configured ?? 'off') === 'off') {
  const line = '!'.repeat(96)
  process.stderr.write([
    line,
    '!!  npm run dev: RATE_LIMITS=off: failed logins, registrations and refreshes are NOT limited.',
    '!!  For local development only; `npm start` keeps the limits on. RATE_LIMITS=on npm run dev',
    '!!  to develop with them (docs: README, "Local development").',
    line,
    ''
  ].join('\n'))
}

const child = spawn(process.execPath, [require.resolve('tsx/cli'), 'watch', '--clear-screen=false', join(root, 'src', 'server.ts')], {
  env,
  stdio: 'inherit'
})
// Ctrl-C reaches the whole process group; a SIGTERM sent to this process alone is passed on.
process.on('SIGTERM', () => child.kill('SIGTERM'))
process.on('SIGINT', () => {})
child.on('exit', (code, signal) => { process.exitCode = code ?? (signal ? 1 : 0) })
