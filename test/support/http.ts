import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { PASSWORD, uniqueName } from '../helper'

/**
 * HTTP helpers for tests against server processes. Every request goes over a connection of
 * its own (no agent, no keep-alive), either opened for it or opened beforehand (`burst`), so
 * that requests fired together really arrive together.
 */
export interface Answer {
  status: number
  body: any
}

/** Where a request goes: a server's base URL, or a connection already open to it. */
export type Target = string | { base: string, socket: Socket }

export function call (target: Target, method: string, path: string, opts: { body?: unknown, token?: string } = {}): Promise<Answer> {
  const { base, socket } = typeof target === 'string' ? { base: target, socket: undefined } : target
  const headers: Record<string, string> = {}
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body)
  if (payload !== undefined) headers['content-type'] = 'application/json'
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  return new Promise((resolve, reject) => {
    const req = request(base + path, {
      method,
      headers,
      agent: false,
      ...(socket === undefined ? {} : { createConnection: () => socket })
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { text += d })
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode!, body: text === '' ? undefined : JSON.parse(text) })
        } catch (err) {
          reject(err)
        }
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/**
 * `n` requests at once, each over its own connection: the connections are all opened first
 * (request i to `baseOf(i)`), then every request is written in the same tick. Answers come
 * back in the order fired.
 */
export async function burst<T> (n: number, baseOf: (i: number) => string, fn: (target: Target, i: number) => Promise<T>): Promise<T[]> {
  const targets = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const base = baseOf(i)
    const { hostname, port } = new URL(base)
    const socket = connect(Number(port), hostname)
    await once(socket, 'connect')
    return { base, socket }
  }))
  return await Promise.all(targets.map((target, i) => fn(target, i)))
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The claims of a JWT (its middle segment), read without checking anything. */
export function claims (token: string): { sub: string, sid: string, jti: string, exp: number } {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
}

// --- the service API ---

export async function register (base: Target, username = uniqueName('race'), password = PASSWORD) {
  const res = await call(base, 'POST', '/auth/register', { body: { username, password } })
  if (res.status !== 201) throw new Error(`register failed: ${res.status}`)
  return { id: res.body.id as string, username, password }
}

export const login = (base: Target, username: string, password = PASSWORD) =>
  call(base, 'POST', '/auth/login', { body: { username, password } })

/** A login that must succeed: its access and refresh tokens. */
export async function session (base: Target, username: string, password = PASSWORD) {
  const res = await login(base, username, password)
  if (res.status !== 200) throw new Error(`login failed: ${res.status}`)
  return { access: res.body.access_token as string, refresh: res.body.refresh_token as string }
}

export const me = async (base: Target, token: string) => (await call(base, 'GET', '/users/me', { token })).status
export const logout = async (base: Target, token: string) => (await call(base, 'POST', '/auth/logout', { token })).status
export const refresh = (base: Target, refreshToken: string) => call(base, 'POST', '/auth/refresh', { body: { refresh_token: refreshToken } })

// --- the seed-compatible routes (seed 000) ---

export async function compatRegister (base: Target, username = uniqueName('demo'), password = PASSWORD) {
  const res = await call(base, 'POST', '/user', { body: { username, password } })
  if (res.status !== 201) throw new Error(`compat register failed: ${res.status}`)
  return { username, password }
}

export const authenticateUser = (base: Target, username: string, password = PASSWORD) =>
  call(base, 'POST', '/authenticate_user', { body: { username, password } })

export const validateToken = (base: Target, token: string) => call(base, 'POST', '/validate_token', { body: { token } })
export const compatLogout = (base: Target, token: string) => call(base, 'POST', '/logout', { body: { token } })
export const putUser = (base: Target, token: string, body: Record<string, string>) => call(base, 'PUT', '/user', { body, token })
