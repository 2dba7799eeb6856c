import { defineConfig } from 'drizzle-kit'

// PostgreSQL (DATABASE_URL=postgres://...). See drizzle.sqlite.config.ts.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/postgres/schema.ts',
  out: './src/db/postgres/migrations'
})
