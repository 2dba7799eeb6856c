import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

// The OpenAPI 3 document (/docs/json) is built from the route schemas; /docs serves Swagger UI.
export default fp(async function openapi (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'auth-service',
        description: 'Authentication microservice: accounts, short-lived JWT access tokens, rotating refresh tokens, sessions and revocation.',
        version: '0.1.0'
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }
        }
      },
      tags: [
        { name: 'auth', description: 'register, login, refresh, logout, introspection' },
        { name: 'users', description: 'the current user and their sessions' },
        { name: 'health', description: 'liveness and dependencies' },
        { name: 'keys', description: 'public keys that verify access tokens' },
        { name: 'compat', description: 'routes of the two Flask services this one replaces (deprecated)' }
      ]
    },
    refResolver: {
      // components are named after the schemas' $id
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`)
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'openapi', dependencies: ['config'] })
