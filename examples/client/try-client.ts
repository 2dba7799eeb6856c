// A client of the service, typed by the types that openapi-typescript generates from
// openapi.json (see the README, "Generating a client"): register, log in, read the profile.
import createClient from 'openapi-fetch'
import type { paths } from './auth-service'

const auth = createClient<paths>({ baseUrl: process.env.BASE ?? 'http://127.0.0.1:3000' })

async function main () {
  const username = `client_${Date.now()}`
  const password = 'a long client passphrase'

  const registered = await auth.POST('/auth/register', { body: { username, password } })
  console.log('register', registered.response.status, registered.data?.username)

  const login = await auth.POST('/auth/login', { body: { username, password } })
  if (login.data === undefined) throw new Error(login.error.message)
  // 202: the account has two-factor login; the answer is an MfaChallenge, not a TokenPair
  if ('mfa_required' in login.data) throw new Error('second factor required: POST /auth/login/mfa')
  console.log('login', login.response.status, login.data.token_type)

  // data is the TokenPair: a misspelt field (login.data.acess_token) would not compile
  const me = await auth.GET('/users/me', { headers: { authorization: `Bearer ${login.data.access_token}` } })
  console.log('me', me.response.status, me.data?.username)
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
