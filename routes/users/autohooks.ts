import type { FastifyInstance } from 'fastify'

// Every route under /users needs a live access token of a live user: verified, checked
// against the blocklist, its user loaded (request.profile), all on request, before a body is
// read. Scoped to this folder; public routes never pass through here.
export default async function usersAutohooks (fastify: FastifyInstance) {
  fastify.addHook('onRequest', fastify.authenticate())
}
