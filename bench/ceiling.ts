/**
 * The `ceiling` reference: a bare Fastify server, in its own process, that answers
 * GET /users/me with a JSON body of the same size as the service's, serialised through a
 * response schema. No hooks, no auth, no database: what this machine can serve at most.
 *
 * Env: CEILING_BODY (a JSON sample of the service's GET /users/me answer).
 * Prints {"port": N} on stdout once listening, on 127.0.0.1 and a free port.
 */
import Fastify from 'fastify'

const body = JSON.parse(process.env.CEILING_BODY ?? '{"id":"00000000-0000-4000-8000-000000000000","username":"ceiling","created_at":"1970-01-01T00:00:00.000Z","updated_at":"1970-01-01T00:00:00.000Z"}') as Record<string, string>
const properties: Record<string, { type: 'string' }> = {}
for (const key of Object.keys(body)) properties[key] = { type: 'string' }

async function main () {
  const app = Fastify({ logger: false })
  app.get('/users/me', {
    schema: { response: { 200: { type: 'object', properties, required: Object.keys(body) } } }
  }, async () => body)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  process.stdout.write(JSON.stringify({ port: address.port }) + '\n')
  const stop = () => { app.close().finally(() => process.exit(0)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  // The bench owns this process: if it goes away, so do we.
  process.stdin.on('end', stop)
  process.stdin.resume()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
