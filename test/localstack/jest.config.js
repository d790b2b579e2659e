/** Jest configuration of the LocalStack scenario suite (`npm run test:localstack` runs it through
 *  test/localstack/run.ts, which deploys the stack first). Not part of `npm test`: the root config only
 *  matches `*.test.ts`, and these files are `*.localstack.ts`. */
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  roots: ['<rootDir>/test/localstack'],
  testMatch: ['**/*.localstack.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.json' }] },
  testTimeout: 120000,
  maxWorkers: 1,
};
