import fp from 'fastify-plugin'
import cors from '@fastify/cors'

// CORS only for CORS_ORIGIN. Unset means no CORS headers at all, and then the plugin is not
// registered, so that its per-request hook costs nothing.
export default fp(async function corsPolicy (fastify) {
  const origin = fastify.config.corsOrigin
  if (origin === undefined) return
  await fastify.register(cors, {
    origin,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    maxAge: 600
  })
}, { name: 'cors', dependencies: ['config'] })
