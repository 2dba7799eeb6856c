import type { Server } from 'node:http'
import type { Socket } from 'node:net'

/**
 * The server's inactivity timeout (Fastify's `connectionTimeout`) closes a socket that has
 * sent nothing for that long: a client that connects and never writes (Node's headersTimeout
 * and requestTimeout only start once bytes arrive). Node's default is to close a socket on
 * that timeout even while its request is being answered, with no answer at all: a login queued
 * behind hashing on a busy machine was reset at 10 s. With a 'timeout' listener Node leaves the
 * choice to us: close only a socket with no response in progress. `_httpMessage` is the
 * response Node has assigned to the socket (http's ServerResponse.assignSocket), null between
 * requests; were it ever gone, every timed-out socket would be closed, as without this listener.
 * Nothing is added to the request path.
 */
export function closeOnlyIdleSockets (server: Server): void {
  server.on('timeout', (socket: Socket & { _httpMessage?: unknown }) => {
    if (socket._httpMessage == null) socket.destroy()
  })
}
