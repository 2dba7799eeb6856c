// test/routes/outage-logs.test.ts again, on PostgreSQL: test/helper.ts reads TEST_DIALECT.
process.env.TEST_DIALECT = 'postgres'
require('./outage-logs.test')
