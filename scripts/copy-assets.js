'use strict'
// The build copies what tsc does not: SQL migrations and the common-password list.
const { cpSync } = require('node:fs')
const { join } = require('node:path')

const root = join(__dirname, '..')
for (const rel of ['src/db/sqlite/migrations', 'src/db/postgres/migrations', 'src/security/common-passwords.txt']) {
  cpSync(join(root, rel), join(root, 'dist', rel), { recursive: true })
}
