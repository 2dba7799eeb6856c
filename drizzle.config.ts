import { defineConfig } from 'drizzle-kit'
import { DEFAULT_DATABASE_URL, parseDatabaseUrl } from './src/config'

// drizzle-kit's entry. Its dialect follows DATABASE_URL exactly as the service reads it
// (postgres:// or postgresql:// is PostgreSQL; a file, :memory: or unset is SQLite), so
// `npx drizzle-kit studio` opens the database the service would. `npm run db:generate` runs
// it once with a DATABASE_URL of each kind: each dialect's migrations come from its own
// schema, and the service applies them at start.
const database = parseDatabaseUrl(process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL)

export default database.kind === 'postgres'
  ? defineConfig({
    dialect: 'postgresql',
    schema: './src/db/postgres/schema.ts',
    out: './src/db/postgres/migrations',
    dbCredentials: { url: database.url }
  })
  : defineConfig({
    dialect: 'sqlite',
    schema: './src/db/sqlite/schema.ts',
    out: './src/db/sqlite/migrations',
    dbCredentials: { url: database.filename }
  })
