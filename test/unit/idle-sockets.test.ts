import { once } from 'node:events'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { closeOnlyIdleSockets } from '../../src/idle-sockets'

/** A server with a 300 ms inactivity timeout whose route answers when the test says so. */
async function start (t: Test) {
  let answer: () => void = () => {}
  const answered = new Promise<void>((resolve) => { answer = resolve })
  const server = createServer((_req, res) => { answered.then(() => res.end('done'), () => {}) })
  server.setTimeout(300)
  closeOnlyIdleSockets(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { answer(); server.closeAllConnections(); server.close() })
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
  await once(socket, 'connect')
  return { server, socket, answer }
}

t.test('a socket that sends nothing is closed at the inactivity timeout', async (t) => {
  const { server, socket } = await start(t)
  const closed = once(socket, 'close')
  await once(server, 'timeout')
  await closed // the server closes it; were it not, tap's file timeout would fail this test
  t.ok(socket.destroyed, 'closed by the server')
})

t.test('a request still being answered at the timeout gets its answer, not a reset', async (t) => {
  const { server, socket, answer } = await start(t)
  let closed = false
  socket.on('close', () => { closed = true })
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(server, 'timeout') // the request is in progress when its socket times out
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(closed, 'still open while the request is in progress')
  const data = once(socket, 'data')
  answer()
  const [chunk] = await data
  t.match(String(chunk), /^HTTP\/1\.1 200 /, 'answered')
  t.notOk(closed)
  socket.destroy()
})
