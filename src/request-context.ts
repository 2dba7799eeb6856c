import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'

/** Who is asking: for logs, rate limits, security events, and to drop work for a client that has gone. */
export interface RequestContext {
  log: FastifyBaseLogger
  /** the client IP that limits count against (request.ip, after TRUST_PROXY) */
  ip?: string
  /** aborted when the client disconnects before its answer: queued password hashing is dropped */
  signal?: AbortSignal
  /** the User-Agent header as sent (security events truncate it) */
  userAgent?: string
  /** our request id (request.id), the `reqId` of the request's log lines */
  requestId?: string
  /** the session of the access token that made the request, when it carried one */
  sessionId?: string
}

/**
 * The context of a request. With `reply`, its signal aborts if the client goes before the
 * answer is sent; without, there is no signal (for requests that hash nothing).
 */
export function requestContext (request: FastifyRequest, reply?: FastifyReply): RequestContext {
  const ctx: RequestContext = {
    log: request.log,
    ip: request.ip,
    userAgent: request.headers['user-agent'],
    requestId: request.id,
    sessionId: request.auth?.sid
  }
  if (reply === undefined) return ctx
  const controller = new AbortController()
  // A client that left before this point never fires 'close' on the response again.
  if (request.raw.socket?.destroyed === true) controller.abort()
  else reply.raw.once('close', () => { if (!reply.raw.writableFinished) controller.abort() })
  ctx.signal = controller.signal
  return ctx
}
