import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'

/** Who is asking: for logs, rate limits, and to drop work for a client that has gone. */
export interface RequestContext {
  log: FastifyBaseLogger
  /** the client IP that limits count against (request.ip, after TRUST_PROXY) */
  ip?: string
  /** aborted when the client disconnects before its answer: queued password hashing is dropped */
  signal?: AbortSignal
}

/** The context of a request; its signal aborts if the client goes before the answer is sent. */
export function requestContext (request: FastifyRequest, reply: FastifyReply): RequestContext {
  const controller = new AbortController()
  // A client that left before this point never fires 'close' on the response again.
  if (request.raw.socket?.destroyed === true) controller.abort()
  else reply.raw.once('close', () => { if (!reply.raw.writableFinished) controller.abort() })
  return { log: request.log, ip: request.ip, signal: controller.signal }
}
