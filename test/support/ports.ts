import { createServer } from 'node:net'
import { once } from 'node:events'

// Every port this process has handed out: one given to a database or Redis that a test then
// stops is free again for a moment, and a server started meanwhile was given it (CI saw the
// service refuse to listen on its own PostgreSQL's port once that was started again).
const handedOut = new Set<number>()

/** A TCP port free on 127.0.0.1 right now (for a server the test starts), never one handed out before. */
export async function freePort (): Promise<number> {
  for (;;) {
    const server = createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    server.close()
    await once(server, 'close')
    if (handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
}

/** Polls `check` until it holds (every 20 ms, up to `ms`); throws if it never does. */
export async function waitFor (check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
