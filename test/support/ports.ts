import { createServer } from 'node:net'
import { once } from 'node:events'

/** A TCP port free on 127.0.0.1 right now (for a server the test starts). */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** Polls `check` until it holds (every 20 ms, up to `ms`); throws if it never does. */
export async function waitFor (check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
