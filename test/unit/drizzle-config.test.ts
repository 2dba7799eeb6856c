import { createRequire } from 'node:module'
import { join } from 'node:path'
import t from 'tap'

// Node's own CommonJS require (with its cache), whatever loader runs this file: under tsx the
// file's `require` can be a shim without `require.cache` (CI saw it undefined).
const nodeRequire = createRequire(join(process.cwd(), 'package.json'))

// drizzle.config.ts is drizzle-kit's one entry: its dialect must follow DATABASE_URL the way
// the service reads it, or `npm run db:generate` would write one dialect's SQL for both.
const load = (url: string | undefined) => {
  const saved = process.env.DATABASE_URL
  if (url === undefined) delete process.env.DATABASE_URL
  else process.env.DATABASE_URL = url
  try {
    const entry = nodeRequire.resolve('./drizzle.config')
    delete nodeRequire.cache[entry] // read afresh: it chooses at load time
    return (nodeRequire(entry) as { default: Record<string, any> }).default
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL
    else process.env.DATABASE_URL = saved
  }
}

t.test('unset, a file or :memory: is SQLite; postgres:// and postgresql:// are PostgreSQL', (t) => {
  t.match(load(undefined), { dialect: 'sqlite', schema: './src/db/sqlite/schema.ts', out: './src/db/sqlite/migrations', dbCredentials: { url: './data/auth.db' } })
  t.match(load('file:/tmp/x.db'), { dialect: 'sqlite', dbCredentials: { url: '/tmp/x.db' } })
  t.match(load(':memory:'), { dialect: 'sqlite' })
  for (const url of ['postgres://127.0.0.1/auth', 'postgresql://u@db.example/auth']) {
    t.match(load(url), { dialect: 'postgresql', schema: './src/db/postgres/schema.ts', out: './src/db/postgres/migrations', dbCredentials: { url } })
  }
  t.end()
})

t.test('a DATABASE_URL the service refuses is refused here too, naming the variable', (t) => {
  t.throws(() => load('mysql://localhost/auth'), /DATABASE_URL/)
  t.end()
})
