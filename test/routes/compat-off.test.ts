import t from 'tap'
import type { InjectOptions } from 'fastify'
import { build, newUser, PASSWORD, uniqueName } from '../helper'

// Every seed-compatible route, with a request that would succeed or fail on its own terms
// (never 404) when the routes are on.
const COMPAT_REQUESTS = (token: string): InjectOptions[] => {
  const creds = { username: uniqueName('off'), password: PASSWORD }
  const auth = { authorization: `Bearer ${token}` }
  return [
    { method: 'POST', url: '/register', payload: creds },
    { method: 'POST', url: '/login', payload: creds },
    { method: 'GET', url: '/protected', headers: auth },
    { method: 'DELETE', url: '/logout', headers: auth },
    { method: 'POST', url: '/user', payload: creds },
    { method: 'POST', url: '/authenticate_user', payload: creds },
    { method: 'POST', url: '/validate_token', payload: { token } },
    { method: 'GET', url: '/user', headers: auth },
    { method: 'PUT', url: '/user', headers: auth, payload: { username: uniqueName('off') } },
    { method: 'DELETE', url: '/user', headers: auth },
    { method: 'POST', url: '/logout', payload: { token } }
  ]
}

const operations = (doc: { paths: Record<string, Record<string, { tags?: string[] }>> }) =>
  Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ key: `${method} ${path}`, op })))

t.test('COMPAT_ROUTES=false: no compat route is reachable; the service API is unchanged', async (t) => {
  const on = await build(t)
  const off = await build(t, { COMPAT_ROUTES: 'false' })
  const userOn = await newUser(on)
  const userOff = await newUser(off)

  // Control: with the routes on, every request reaches a compat route.
  for (const req of COMPAT_REQUESTS(userOn.tokens.access_token)) {
    const res = await on.inject(req)
    t.not(res.statusCode, 404, `on: ${req.method} ${req.url} is served`)
  }

  for (const req of COMPAT_REQUESTS(userOff.tokens.access_token)) {
    const res = await off.inject(req)
    t.equal(res.statusCode, 404, `off: ${req.method} ${req.url}`)
    t.same(res.json(), { statusCode: 404, error: 'Not Found', message: `Route ${req.method} ${req.url} not found; the API is described at /docs` }, 'the common 404 shape')
  }
  // Nothing was created or revoked through them.
  t.equal((await off.inject({ method: 'GET', url: '/users/me', headers: userOff.auth })).statusCode, 200)

  // The service API works as before.
  const reg = await off.inject({ method: 'POST', url: '/auth/register', payload: { username: uniqueName('svc'), password: PASSWORD } })
  t.equal(reg.statusCode, 201)
  t.equal((await off.inject({ method: 'POST', url: '/auth/logout', headers: userOff.auth })).statusCode, 204)
  t.equal((await off.inject({ url: '/health' })).statusCode, 200)

  // The OpenAPI document loses exactly the compat operations and nothing else.
  const docOn = (await on.inject({ url: '/docs/json' })).json()
  const docOff = (await off.inject({ url: '/docs/json' })).json()
  const opsOn = operations(docOn)
  const opsOff = operations(docOff)
  const compatOn = opsOn.filter(({ op }) => op.tags?.includes('compat'))
  t.equal(compatOn.length, 11, 'eleven compat operations when on')
  t.same(opsOff.filter(({ op }) => op.tags?.includes('compat')), [], 'none when off')
  t.same(
    opsOff.map(({ key, op }) => ({ key, op })),
    opsOn.filter(({ op }) => !op.tags?.includes('compat')).map(({ key, op }) => ({ key, op })),
    'the other operations are identical'
  )
  // The compat routes' own schemas are components only while the routes are served.
  const compatSchemas = ['CompatMessageError', 'CompatMsgError', 'CompatTokenInput']
  const withoutCompat = Object.fromEntries(Object.entries(docOn.components.schemas).filter(([name]) => !compatSchemas.includes(name)))
  t.same(Object.keys(docOn.components.schemas).filter((name) => compatSchemas.includes(name)).sort(), compatSchemas, 'compat schemas when on')
  t.same(docOff.components, { ...docOn.components, schemas: withoutCompat }, 'the other components unchanged')
})
