import type { Test } from 'tap'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { PASSWORD, uniqueName } from './app'
import type { RunningServer } from './server'

// Login attempts over HTTP for the rate-limit suites: one connection per request, the test
// playing the proxy of TRUST_PROXY=1 so that each request comes from the address it names.

export interface Answer { status: number, headers: IncomingHttpHeaders, body: string }

/** One POST on a connection of its own (no keep-alive agent): N calls at once are N sockets. */
export const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
  send(base, 'POST', path, body, headers)

/** One request with a JSON body on a connection of its own. */
export function send (base: string, method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, {
      method,
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers }
    }, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { data += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }))
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** Behind TRUST_PROXY=1 the test plays the proxy: it appends the client's address to X-Forwarded-For. */
export const from = (clientIp: string, forged?: string) => ({ 'x-forwarded-for': forged === undefined ? clientIp : `${forged}, ${clientIp}` })

export const loginVia = (server: RunningServer, clientIp: string, username: string, password: string, forged?: string) =>
  post(server.url, '/auth/login', { username, password }, from(clientIp, forged))

export async function registerVia (server: RunningServer, clientIp: string, username = uniqueName()) {
  const res = await post(server.url, '/auth/register', { username, password: PASSWORD }, from(clientIp))
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.body}`)
  return username
}

export function tally (answers: Answer[]) {
  const counts: Record<number, number> = {}
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1
  return counts
}

/**
 * Login answers that got past the limiter: refused after hashing (401), or shed by the
 * password-hashing queue when too many were queued at once (503). Either way the attempt
 * was counted before any work, which is what these tests are about.
 */
export function pastTheLimit (answers: Answer[]) {
  const counts = tally(answers)
  const other = Object.keys(counts).map(Number).filter((s) => s !== 401 && s !== 429 && s !== 503)
  return { counted: (counts[401] ?? 0) + (counts[503] ?? 0), limited: counts[429] ?? 0, other }
}

/** Every 429 says when to come back: a whole number of seconds within the window. */
export function checkRetryAfter (t: Test, answers: Answer[], windowMs: number) {
  const limited = answers.filter((a) => a.status === 429)
  const bad = limited.filter((a) => {
    const s = Number(a.headers['retry-after'])
    return !Number.isInteger(s) || s < 1 || s > windowMs / 1000
  })
  t.equal(bad.length, 0, `every 429 has a Retry-After in 1..${windowMs / 1000} s (${limited.length} checked)`)
}

/** A session of `username` started from `clientIp`: its access token. */
export async function tokenVia (server: RunningServer, clientIp: string, username: string, password = PASSWORD): Promise<string> {
  const res = await loginVia(server, clientIp, username, password)
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.body}`)
  return JSON.parse(res.body).access_token
}

/** PATCH /users/me from `clientIp` with `token`. */
export const patchMeVia = (server: RunningServer, clientIp: string, token: string, body: Record<string, string>) =>
  send(server.url, 'PATCH', '/users/me', body, { ...from(clientIp), authorization: `Bearer ${token}` })

/** The seed's PUT /user from `clientIp` with `token`. */
export const putUserVia = (server: RunningServer, clientIp: string, token: string, body: Record<string, string>) =>
  send(server.url, 'PUT', '/user', body, { ...from(clientIp), authorization: `Bearer ${token}` })
