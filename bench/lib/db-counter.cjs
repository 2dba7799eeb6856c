'use strict'
/**
 * Preloaded into the service by bench/costs.ts (`node --require`), never in production:
 * counts what the service asks of its database, at the driver, without changing the
 * service's code. SQLite runs in the process, so nothing outside it can see a statement;
 * for PostgreSQL this is the client's side of what pg_stat_database counts on the server.
 *
 * - better-sqlite3: every Statement#run/get/all/iterate (drizzle and better-sqlite3's own
 *   transaction() run their statements, BEGIN and COMMIT included, through these);
 * - pg: every Client#query, which is one round trip (node-postgres never pipelines).
 *
 * On SIGUSR2 it writes the counts, with a sequence number, to $BENCH_DB_COUNTS_FILE.
 * Statements that read the revocation log are the replica's reconciliation (once a second,
 * whatever the traffic), counted apart as background, with the transactions that held
 * nothing else.
 */
const { writeFileSync } = require('node:fs')

const file = process.env.BENCH_DB_COUNTS_FILE
const kind = process.env.BENCH_DB_KIND
const counts = {
  seq: 0,
  statements: 0, // BEGIN/COMMIT/ROLLBACK excluded
  transactions: 0, // explicit (BEGIN ... COMMIT/ROLLBACK) and autocommit statements alike
  roundTrips: 0, // pg only: one per query, BEGIN and COMMIT included
  connections: 0, // pg only: connections opened (each costs the server one transaction at start)
  background: { statements: 0, transactions: 0, roundTrips: 0 },
  byText: {}
}

const BACKGROUND = /^select\b[\s\S]*\bfrom "revocation_log"/i
const BEGIN = /^\s*begin\b/i
const END = /^\s*(commit|rollback|end)\b/i

/** `conn`: where the open transaction lives (a pg client; one object for SQLite's one connection) */
function note (conn, text) {
  text = typeof text === 'string' ? text : '?'
  const key = text.length > 160 ? text.slice(0, 160) + '...' : text
  counts.byText[key] = (counts.byText[key] ?? 0) + 1
  const background = BACKGROUND.test(text)
  if (BEGIN.test(text)) {
    conn.costsTx = { background: true }
    return
  }
  if (END.test(text)) {
    if (conn.costsTx !== undefined) {
      counts.transactions++
      if (conn.costsTx.background) counts.background.transactions++
    }
    conn.costsTx = undefined
    return
  }
  counts.statements++
  if (background) counts.background.statements++
  if (conn.costsTx !== undefined) {
    if (!background) conn.costsTx.background = false
  } else {
    counts.transactions++
    if (background) counts.background.transactions++
  }
}

if (kind === 'sqlite') {
  const Database = require('better-sqlite3')
  const probe = new Database(':memory:')
  // Statements are native objects: wrap their class's methods, reached through one of them.
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1'))
  probe.close()
  const connection = {}
  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = proto[method]
    proto[method] = function (...args) {
      note(connection, this.source)
      return original.apply(this, args)
    }
  }
}

if (kind === 'postgres') {
  const pg = require('pg')
  const original = pg.Client.prototype.query
  const connect = pg.Client.prototype.connect
  pg.Client.prototype.connect = function (...args) {
    counts.connections++
    return connect.apply(this, args)
  }
  pg.Client.prototype.query = function (config, ...rest) {
    const text = typeof config === 'string' ? config : config?.text
    counts.roundTrips++
    if (typeof text === 'string' && BACKGROUND.test(text)) counts.background.roundTrips++
    note(this, text)
    return original.call(this, config, ...rest)
  }
}

process.on('SIGUSR2', () => {
  counts.seq++
  if (file) writeFileSync(file, JSON.stringify(counts))
})
