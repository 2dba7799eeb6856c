import type { FastifyRequest, FastifyServerOptions } from 'fastify'

/**
 * The URL as logged: the path only. A query string may carry a token (`?access_token=`, a
 * client's mistake or a seed's habit), and none of it is needed to read a log.
 */
export function loggedUrl (url: string | undefined): string | undefined {
  const q = url?.indexOf('?') ?? -1
  return q === -1 ? url : `${url!.slice(0, q)}?[redacted]`
}

/**
 * Pino options. Credentials never reach a log line: request headers that carry them and
 * query strings are redacted, and bodies are never logged (only the security events name what happened).
 * `pretty`: lines for a person at a terminal (pino-pretty, in a worker thread) instead of
 * JSON; see prettyLogs. Redaction happens before either.
 */
export function loggerOptions (level: string, opts: { pretty?: boolean } = {}): FastifyServerOptions['logger'] {
  return {
    level,
    ...(opts.pretty === true
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
    serializers: {
      // fastify's own request serializer, with the query string redacted
      req: (req: FastifyRequest) => ({
        method: req.method,
        url: loggedUrl(req.url),
        host: req.host,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort
      })
    },
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

/**
 * Pretty logs when a person is reading them: stdout is a terminal and this is not production.
 * Anywhere else (a pipe, a file, a log collector, NODE_ENV=production) logs stay JSON lines.
 */
export function prettyLogs (production: boolean, stdoutIsTerminal = process.stdout.isTTY === true): boolean {
  return stdoutIsTerminal && !production
}
