'use strict'
// The build copies what tsc does not: SQL migrations, the common-password list and the
// bcrypt worker (plain JavaScript that piscina loads by file name).
const { cpSync } = require('node:fs')
const { join } = require('node:path')

const root = join(__dirname, '..')
for (const rel of ['src/db/migrations', 'src/security/common-passwords.txt', 'src/security/bcrypt-worker.js']) {
  cpSync(join(root, rel), join(root, 'dist', rel), { recursive: true })
}
