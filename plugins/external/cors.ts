import cors, { type FastifyCorsOptions } from '@fastify/cors'
import type { FastifyInstance } from 'fastify'

// CORS only for CORS_ORIGIN; unset means no CORS headers at all (origin: false).
export const autoConfig = (fastify: FastifyInstance): FastifyCorsOptions => ({
  origin: fastify.config.corsOrigin ?? false,
  methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
  allowedHeaders: ['Authorization', 'Content-Type'],
  maxAge: 600
})

export default cors
