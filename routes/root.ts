import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const MESSAGE = 'auth-service: the API is described at /docs (Swagger UI) and /docs/json (OpenAPI 3)'

const Pointer = Type.Object({
  message: Type.String({ examples: [MESSAGE] }),
  docs: Type.String({ description: 'Swagger UI', examples: ['/docs'] }),
  openapi: Type.String({ description: 'the OpenAPI 3 document', examples: ['/docs/json'] })
}, { description: 'Where the documentation is' })

// GET /: whoever opens the service's address finds the way to its documentation.
const root: FastifyPluginAsyncTypebox = async (fastify) => {
  const answer = {
    message: MESSAGE,
    docs: '/docs',
    openapi: '/docs/json'
  }
  fastify.get('/', {
    schema: {
      operationId: 'root',
      tags: ['about'],
      summary: 'Where the documentation is',
      response: { 200: Pointer }
    }
  }, async () => answer)
}

export default root
