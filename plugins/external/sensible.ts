import sensible from '@fastify/sensible'

// httpErrors (reply.unauthorized(), fastify.httpErrors.conflict() ...) that produce the contract's error shape.
export default sensible
