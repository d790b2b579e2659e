/** Unit, interop and integration tests. Integration/interop tests spawn compiled code from dist/,
 *  which `npm test` builds first. Never put timing assertions here: benchmarks live in `npm run bench`. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.json' }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
