import type { FastifyInstance } from 'fastify'

// Every route under /users needs a live access token: verified on request, then checked
// against the blocklist. Scoped to this folder; public routes never pass through here.
export default async function usersAutohooks (fastify: FastifyInstance) {
  fastify.addHook('onRequest', fastify.authenticate)
  fastify.addHook('preHandler', fastify.checkRevocation)
}
