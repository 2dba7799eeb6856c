import { defineConfig } from 'drizzle-kit'

// SQLite (the embedded default). `npm run db:generate` runs this and drizzle.postgres.config.ts:
// both dialects get their migrations from their own schema; the service applies them at start.
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/db/sqlite/schema.ts',
  out: './src/db/sqlite/migrations'
})
