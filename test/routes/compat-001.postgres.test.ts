// test/routes/compat-001.test.ts again, on PostgreSQL: test/helper.ts reads TEST_DIALECT.
process.env.TEST_DIALECT = 'postgres'
require('./compat-001.test')
