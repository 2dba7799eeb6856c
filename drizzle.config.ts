import { defineConfig } from 'drizzle-kit'

// Generates the SQL migrations committed in src/db/migrations; the service applies them at start.
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/db/schema.ts',
  out: './src/db/migrations'
})
