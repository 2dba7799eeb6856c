import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config'

// AUDIT_LOG and AUDIT_RETENTION_DAYS (docs/audit.md). A file of its own: config.test.ts is
// shared with other work.

t.test('defaults: log lines only, 90 days', async (t) => {
  t.same(loadConfig({}).audit, { table: false, retentionDays: 90 })
  t.same(loadConfig({ AUDIT_LOG: '', AUDIT_RETENTION_DAYS: '' }).audit, { table: false, retentionDays: 90 }, 'empty is unset')
})

t.test('AUDIT_LOG=table, and the bounds of AUDIT_RETENTION_DAYS', async (t) => {
  t.same(loadConfig({ AUDIT_LOG: 'table', AUDIT_RETENTION_DAYS: '1' }).audit, { table: true, retentionDays: 1 })
  t.same(loadConfig({ AUDIT_LOG: 'log', AUDIT_RETENTION_DAYS: '3650' }).audit, { table: false, retentionDays: 3650 })
})

t.test('a bad value stops the start, naming the variable', async (t) => {
  for (const [env, variable] of [
    [{ AUDIT_LOG: 'db' }, 'AUDIT_LOG'],
    [{ AUDIT_LOG: 'TABLE' }, 'AUDIT_LOG'],
    [{ AUDIT_RETENTION_DAYS: '0' }, 'AUDIT_RETENTION_DAYS'],
    [{ AUDIT_RETENTION_DAYS: '3651' }, 'AUDIT_RETENTION_DAYS'],
    [{ AUDIT_RETENTION_DAYS: '30d' }, 'AUDIT_RETENTION_DAYS'],
    [{ AUDIT_RETENTION_DAYS: '-5' }, 'AUDIT_RETENTION_DAYS']
  ] as const) {
    t.throws(() => loadConfig(env), new ConfigError(variable, ''), JSON.stringify(env))
    const err = (() => { try { loadConfig(env) } catch (e) { return e } })() as ConfigError
    t.equal(err.variable, variable, `${JSON.stringify(env)}: named`)
  }
})
