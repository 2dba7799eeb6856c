import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { classifyError, errorBody, logErrorAnswer, setCommonHeaders } from '../../src/http-errors'

/**
 * The methods each registered path takes, for 405 and Allow. A path is matched segment by
 * segment: `:param` matches any one segment, everything else literally (as the router does,
 * case-sensitively and without trailing-slash folding).
 */
class AllowedMethods {
  private readonly routes = new Map<string, { segments: string[], methods: Set<string> }>()

  add (url: string, methods: string | string[]) {
    if (url.includes('*')) return // a wildcard (a CORS preflight route) takes every path
    let route = this.routes.get(url)
    if (route === undefined) {
      route = { segments: url.split('/'), methods: new Set() }
      this.routes.set(url, route)
    }
    for (const method of [methods].flat()) route.methods.add(method)
  }

  of (path: string): string[] {
    const segments = path.split('/')
    const allowed = new Set<string>()
    for (const route of this.routes.values()) {
      if (route.segments.length !== segments.length) continue
      const match = route.segments.every((s, i) => (s.startsWith(':') ? segments[i] !== '' : s === segments[i]))
      if (match) for (const method of route.methods) allowed.add(method)
    }
    return [...allowed].sort()
  }
}

/**
 * HTTP rules shared by every route: JSON parsing, security headers, the one error handler,
 * 404 for unknown paths and 405 (with Allow) for a known path called with another method.
 */
export default fp(async function http (fastify) {
  // The default JSON parser (prototype-poisoning protection included), except that an empty
  // body counts as no body: POST /auth/logout may be sent with Content-Type and nothing else.
  // JSON only: text/plain and everything else is 415.
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) {
      done(null, undefined)
      return
    }
    parseJson(request, body as string, done)
  })

  // Set up front (a sync onRequest hook is cheaper than onSend) and kept on every answer, errors included.
  fastify.addHook('onRequest', function (request, reply, done) {
    setCommonHeaders(reply, request.url)
    done()
  })

  fastify.setErrorHandler(function (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    const { statusCode, message, code, retryAfter } = classifyError(error)
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    logErrorAnswer(request, error, statusCode, message, code)
    return reply.status(statusCode).send(errorBody(statusCode, message, code))
  })

  // Every route registered from here on (the routes/ folder) is known to the 405 answer.
  const allowed = new AllowedMethods()
  fastify.addHook('onRoute', (route) => { allowed.add(route.url, route.method) })

  fastify.setNotFoundHandler(function (request, reply) {
    const path = request.url.split('?')[0]
    const methods = allowed.of(path)
    if (methods.length > 0) {
      reply.header('allow', methods.join(', '))
      const message = `Method ${request.method} is not allowed on ${path}; it takes ${methods.join(', ')}`
      return reply.status(405).send(errorBody(405, message))
    }
    const message = `Route ${request.method} ${path} not found; the API is described at /docs`
    return reply.status(404).send(errorBody(404, message))
  })
}, { name: 'http' })
