// test/e2e/races-revoke.test.ts again, on PostgreSQL: test/helper.ts reads TEST_DIALECT.
process.env.TEST_DIALECT = 'postgres'
require('./races-revoke.test')
