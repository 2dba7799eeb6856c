import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BearerSecurity, errorResponse, errors, NoContent } from '../../src/schemas/common'
import {
  AdminUser, AdminUserDetail, AdminUserPage, AdminUserParams, AdminUserQuery, PasswordResetToken, toAdminUser
} from '../../src/schemas/accounts'
import { requestContext } from '../../src/request-context'
import { UserNotFoundError } from '../../src/errors'

const iso = (ms: number) => new Date(ms).toISOString()
/** The page cursor: the last username key of the page, opaque to clients. */
const cursorOf = (key: string) => Buffer.from(key, 'utf8').toString('base64url')
const keyOf = (cursor: string) => Buffer.from(cursor, 'base64url').toString('utf8')

const forbidden = errorResponse(403, 'The token is valid but its user does not hold the admin role (read from the ' +
  'database on every request)', 'Admin role required')
const notFound = errorResponse(404, 'No user has this id', 'User not found')
const badId = errorResponse(400, 'The user id is empty or over 64 characters',
  'path parameter id must be 1 to 64 characters', 'FST_ERR_VALIDATION')
const common = { tags: ['admin'], security: BearerSecurity, params: AdminUserParams }

// The accounts, for admins (docs/api.md, "Administration"). Guarded by ./autohooks.ts.
const users: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accountsRepository: repo, admin } = fastify

  fastify.get('/users', {
    schema: {
      operationId: 'adminListUsers',
      tags: ['admin'],
      summary: 'Find users by username prefix',
      security: BearerSecurity,
      querystring: AdminUserQuery,
      response: { 200: AdminUserPage, 403: forbidden, ...errors(400, 401, 503) }
    }
  }, async (request) => {
    const { query = '', limit, after } = request.query
    const size = limit === undefined ? 20 : Number(limit)
    const found = await repo.search(query, size + 1, after === undefined ? undefined : keyOf(after))
    const page = found.slice(0, size)
    const next = found.length > size ? { next: cursorOf(page[page.length - 1].usernameKey) } : {}
    return { users: page.map(toAdminUser), ...next }
  })

  fastify.get('/users/:id', {
    schema: {
      ...common,
      operationId: 'adminGetUser',
      summary: 'One user, with their active sessions',
      response: {
        200: Type.Ref(AdminUserDetail, { description: 'The user and their active sessions' }),
        400: badId,
        403: forbidden,
        404: notFound,
        ...errors(401, 414, 503)
      }
    }
  }, async (request) => {
    const account = await repo.find(request.params.id)
    if (account === undefined) throw new UserNotFoundError()
    const sid = request.auth!.sid
    const list = await fastify.sessions.listActive(account.id)
    const sessions = list.map((s) => ({
      id: s.id,
      created_at: iso(s.createdAt),
      last_used_at: iso(s.lastUsedAt),
      expires_at: iso(s.expiresAt),
      current: s.id === sid
    }))
    return { ...toAdminUser(account), sessions }
  })

  fastify.post('/users/:id/disable', {
    schema: {
      ...common,
      operationId: 'adminDisableUser',
      summary: 'Disable an account: every session revoked at once, no login until enabled',
      description: 'A login with the right password then gets 403 "Account disabled"; a wrong one the usual 401.',
      response: {
        200: Type.Ref(AdminUser, { description: 'The account, disabled; its sessions are revoked' }),
        400: badId,
        403: forbidden,
        404: notFound,
        ...errors(401, 414, 503)
      }
    }
  }, async (request, reply) => {
    const ctx = requestContext(request, reply)
    return toAdminUser(await admin.disable(request.params.id, request.auth!.sub, ctx))
  })

  fastify.post('/users/:id/enable', {
    schema: {
      ...common,
      operationId: 'adminEnableUser',
      summary: 'Enable a disabled account (its sessions stay revoked)',
      response: {
        200: Type.Ref(AdminUser, { description: 'The account, enabled' }),
        400: badId,
        403: forbidden,
        404: notFound,
        ...errors(401, 414, 503)
      }
    }
  }, async (request, reply) => {
    const ctx = requestContext(request, reply)
    return toAdminUser(await admin.enable(request.params.id, request.auth!.sub, ctx))
  })

  fastify.post('/users/:id/logout', {
    schema: {
      ...common,
      operationId: 'adminLogoutUser',
      summary: 'Revoke every session of a user',
      response: {
        204: NoContent('Every session of the user is revoked'),
        400: badId,
        403: forbidden,
        404: notFound,
        ...errors(401, 414, 503)
      }
    }
  }, async (request, reply) => {
    await admin.logout(request.params.id, request.auth!.sub, requestContext(request, reply))
    return reply.status(204).send(null)
  })

  fastify.delete('/users/:id/mfa', {
    schema: {
      ...common,
      operationId: 'adminRemoveMfa',
      summary: 'Remove a user\'s TOTP (a lost device): the password alone logs in again',
      response: {
        204: NoContent('TOTP is off for the user; its secret and recovery codes are deleted'),
        400: badId,
        403: forbidden,
        404: notFound,
        ...errors(401, 414, 503)
      }
    }
  }, async (request, reply) => {
    await admin.removeMfa(request.params.id, request.auth!.sub, requestContext(request, reply))
    return reply.status(204).send(null)
  })

  fastify.post('/users/:id/password-reset', {
    schema: {
      ...common,
      operationId: 'adminIssuePasswordReset',
      summary: 'Issue a single-use password reset token (900 s) to hand to the user out of band',
      description: 'The user sets a new password with POST /auth/password/reset. A new token replaces an unused one.',
      response: { 200: PasswordResetToken, 400: badId, 403: forbidden, 404: notFound, ...errors(401, 414, 503) }
    }
  }, async (request, reply) => {
    const issued = await admin.issueReset(request.params.id, request.auth!.sub, requestContext(request, reply))
    return { reset_token: issued.token, expires_in: 900 as const }
  })

  fastify.delete('/users/:id', {
    schema: {
      ...common,
      operationId: 'adminDeleteUser',
      summary: 'Delete an account, as DELETE /users/me does: every token of it stops working',
      response: {
        204: NoContent('The account and every session of it are gone'),
        400: badId,
        403: forbidden,
        404: notFound,
        ...errors(401, 414, 503)
      }
    }
  }, async (request, reply) => {
    await admin.remove(request.params.id, request.auth!.sub, requestContext(request, reply))
    return reply.status(204).send(null)
  })
}

export default users
