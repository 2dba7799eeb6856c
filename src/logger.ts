import type { FastifyServerOptions } from 'fastify'

/**
 * Pino options. Credentials never reach a log line: request headers that carry them are
 * redacted, and bodies are never logged (only the security events name what happened).
 */
export function loggerOptions (level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        '*.password',
        '*.current_password',
        '*.token',
        '*.access_token',
        '*.refresh_token'
      ],
      censor: '[redacted]'
    }
  }
}
