import type { FastifyInstance } from 'fastify'

// Every route under /admin: a live access token of a live user (as /users), and then the
// admin role, read from the database on each request (never from the token, never cached).
export default async function adminAutohooks (fastify: FastifyInstance) {
  fastify.addHook('onRequest', fastify.authenticate())
  fastify.addHook('onRequest', fastify.admin.requireAdmin)
}
