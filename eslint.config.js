'use strict'

module.exports = [
  ...require('neostandard')({
    ts: true,
    ignores: ['dist/**', 'packages/*/dist/**', 'coverage/**', '.tap/**', 'node_modules/**', 'src/db/*/migrations/**', 'bench/.tmp/**', 'examples/client/auth-service.d.ts']
  }),
  {
    // TypeBox's convention: a schema and its static type share one name.
    files: ['src/schemas/**/*.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  },
  {
    // The service's code reads without sideways scrolling (tests, scripts and bench may run longer).
    files: ['src/**/*.{ts,js}', 'plugins/**/*.{ts,js}', 'routes/**/*.{ts,js}'],
    rules: { '@stylistic/max-len': ['error', { code: 120, tabWidth: 2 }] }
  }
]
