import { configDefaults, defineConfig } from 'vitest/config';
import { ETCD_INSTALL_HINT, findEtcdBinary } from './test/support/find-etcd.js';

// Without etcd, outside CI, the etcd test files are left out, and the run says so
// loudly (at its start and its end). On CI (CI=true) they always run, and fail
// with the install hint when etcd is missing: CI must never pass without them.
const skipEtcd = findEtcdBinary() === null && process.env['CI'] !== 'true';
if (skipEtcd)
  process.env['MUSTER_ETCD_SKIPPED'] =
    `SKIPPED: the etcd tests (test/*.etcd.test.ts): etcd not found; install it: ${ETCD_INSTALL_HINT}`;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: skipEtcd ? [...configDefaults.exclude, 'test/**/*.etcd.test.ts'] : configDefaults.exclude,
    globalSetup: skipEtcd ? ['test/support/etcd-skip-notice.ts'] : [],
    // Two cores: at most two test files at once.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
