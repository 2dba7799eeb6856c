// The test helpers, in parts under test/support/ (imported from here by every suite):
// - app.ts: the app built for a test, its environment, users and tokens;
// - redis.ts: the shared Redis (requireRedis, redisPrefix) and a private one (ownRedis);
// - postgres.ts: the dialect under test, databases on the shared server, a private server;
// - server.ts: the built service as a process (startServer);
// - ports.ts: free ports, and waitFor.
export * from './support/app'
export * from './support/redis'
export * from './support/postgres'
export * from './support/server'
export * from './support/ports'
