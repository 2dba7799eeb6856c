import type { FastifySchemaValidationError } from 'fastify'

type SchemaErrorDataVar = 'body' | 'headers' | 'params' | 'querystring'

/**
 * The one formatter of schema validation errors (Fastify's `schemaErrorFormatter`): a message
 * that names the field, says what is allowed, and says it once, instead of Ajv's own text
 * ("body/scope must be equal to constant, body/scope must be equal to constant, ...").
 *
 * It reads the failing schema (Ajv's `verbose` option puts it on each error as `parentSchema`).
 * A schema may carry its own message in the vendor keyword `x-error`; it then wins over the
 * generic one (usernames, whose rule is a pattern, and the PATCH /users/me rules).
 */
export const ERROR_MESSAGE_KEYWORD = 'x-error'

interface Schema {
  [ERROR_MESSAGE_KEYWORD]?: string
  type?: string | string[]
  properties?: Record<string, unknown>
  anyOf?: Schema[]
  oneOf?: Schema[]
  enum?: unknown[]
  const?: unknown
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minProperties?: number
  maxProperties?: number
  minItems?: number
  maxItems?: number
}

type AjvError = FastifySchemaValidationError & { parentSchema?: Schema, data?: unknown, schema?: unknown }

const LOCATION: Record<SchemaErrorDataVar, string> = {
  body: '',
  params: 'path parameter ',
  querystring: 'query parameter ',
  headers: 'header '
}
const SUBJECT: Record<SchemaErrorDataVar, string> = {
  body: 'The body',
  params: 'The path',
  querystring: 'The query string',
  headers: 'The headers'
}

/** `/user/names/0` → `user.names[0]`; a property name is cut short and never more than a name. */
function joinPath (segments: string[]): string {
  let out = ''
  for (const raw of segments) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~').slice(0, 64)
    if (/^\d+$/.test(segment)) out += `[${segment}]`
    else out += out === '' ? segment : `.${segment}`
  }
  return out
}

const quote = (value: unknown) => JSON.stringify(value)
const list = (values: unknown[]) => values.map(quote).join(', ')

const A_TYPE: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a JSON object',
  array: 'an array',
  null: 'null'
}

function range (min: number | undefined, max: number | undefined, unit: string): string {
  if (min !== undefined && max !== undefined) return min === max ? `exactly ${min}${unit}` : `${min} to ${max}${unit}`
  if (min !== undefined) return `at least ${min}${unit}`
  return `at most ${max}${unit}`
}

/** The values an anyOf/oneOf of constants allows, or undefined when its branches are not all constants. */
function constants (branches: Schema[] | undefined): unknown[] | undefined {
  if (branches === undefined) return undefined
  const values: unknown[] = []
  for (const branch of branches) {
    if ('const' in branch) values.push(branch.const)
    else if (Array.isArray(branch.enum)) values.push(...branch.enum)
    else return undefined
  }
  return values
}

function describe (error: AjvError, dataVar: SchemaErrorDataVar): string {
  const schema = error.parentSchema ?? {}
  const own = schema[ERROR_MESSAGE_KEYWORD]
  if (typeof own === 'string') return own

  const segments = error.instancePath.split('/').slice(1)
  const field = (extra?: string) => {
    const path = joinPath(extra === undefined ? segments : [...segments, extra])
    return path === '' ? SUBJECT[dataVar] : `${LOCATION[dataVar]}${path}`
  }
  const subject = field()
  const params = error.params

  switch (error.keyword) {
    case 'required':
      return `${field(String(params.missingProperty))} is required`
    case 'additionalProperties': {
      const allowed = Object.keys(schema.properties ?? {})
      const where = segments.length === 0 && dataVar === 'body' ? 'the body' : subject
      const name = quote(String(params.additionalProperty).slice(0, 64))
      return allowed.length === 0
        ? `Unknown field ${name} in ${where}: it takes no fields`
        : `Unknown field ${name} in ${where}; allowed: ${allowed.join(', ')}`
    }
    case 'type': {
      if (segments.length === 0 && dataVar === 'body' && error.data == null) return 'A JSON body is required'
      const types = String(params.type).split(',').map((t) => A_TYPE[t] ?? t)
      return `${subject} must be ${types.join(' or ')}`
    }
    case 'enum':
      return `${subject} must be one of: ${list(schema.enum ?? (params.allowedValues as unknown[]) ?? [])}`
    case 'const':
      return `${subject} must be ${quote(params.allowedValue)}`
    case 'anyOf':
    case 'oneOf': {
      const values = constants(schema[error.keyword])
      if (values !== undefined) return `${subject} must be one of: ${list(values)}`
      return `${subject} does not match any of the allowed forms`
    }
    case 'minLength':
    case 'maxLength':
      if (schema.minLength === 1 && schema.maxLength === undefined) return `${subject} must not be empty`
      return `${subject} must be ${range(schema.minLength, schema.maxLength, ' characters')}`
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${subject} must be ${range(schema.minimum, schema.maximum, '')}`
    case 'minProperties':
    case 'maxProperties':
      return `${subject} must have ${range(schema.minProperties, schema.maxProperties, ' field(s)')}`
    case 'minItems':
    case 'maxItems':
      return `${subject} must have ${range(schema.minItems, schema.maxItems, ' item(s)')}`
    case 'pattern':
      // The pattern itself means nothing to a reader: a schema with one carries x-error.
      return `${subject} contains characters that are not allowed`
    case 'format':
      return `${subject} must be a valid ${String(params.format)}`
    default:
      return `${subject} is not valid`
  }
}

/**
 * Fastify's schemaErrorFormatter. With Ajv's allErrors off, validation stops at the first
 * rule that fails: that is the last error. The ones before it are the branches an anyOf
 * tried, which the anyOf's own message covers.
 */
export function formatValidationErrors (errors: FastifySchemaValidationError[], dataVar: SchemaErrorDataVar): Error {
  const last = errors[errors.length - 1] as AjvError | undefined
  const message = last === undefined ? `${SUBJECT[dataVar]} is not valid` : describe(last, dataVar)
  // Fastify keeps these on error.validation: drop the values they carry (`verbose` adds
  // them, and one may be a password) so that nothing downstream can log one.
  for (const e of errors as AjvError[]) {
    delete e.data
    delete e.schema
    delete e.parentSchema
  }
  return new Error(message)
}
