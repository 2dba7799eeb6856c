// test/e2e/races-compat.test.ts again, on PostgreSQL: test/helper.ts reads TEST_DIALECT.
process.env.TEST_DIALECT = 'postgres'
require('./races-compat.test')
