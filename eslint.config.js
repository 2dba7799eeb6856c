'use strict'

module.exports = [
  ...require('neostandard')({
    ts: true,
    ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**', 'src/db/*/migrations/**', 'bench/.tmp/**', 'examples/client/auth-service.d.ts']
  }),
  {
    // TypeBox's convention: a schema and its static type share one name.
    files: ['src/schemas/**/*.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
