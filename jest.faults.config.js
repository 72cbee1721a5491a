/**
 * The fault suites (test/faults/) put load on two Kapija processes and time their recovery from a
 * killed process or a restarted private PostgreSQL, so they run after the main run, alone and one
 * file at a time (scripts/test.mjs).
 */
import base from './jest.config.js';

export default {
  ...base,
  testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  maxWorkers: 1,
  testTimeout: 120_000,
};
