import { configDefaults, defineConfig } from 'vitest/config';
import { ETCD_INSTALL_HINT, findEtcdBinary } from './test/support/find-etcd.js';
import { CHROMIUM_INSTALL_HINT, findChromium } from './test/support/find-chromium.js';

// Without etcd (or Chromium), outside CI, the etcd (browser) test files are left
// out, and the run says so loudly (at its start and its end). On CI (CI=true) they
// always run, and fail with the install hint when the program is missing: CI must
// never pass without them.
const onCi = process.env['CI'] === 'true';
const skipEtcd = findEtcdBinary() === null && !onCi;
const skipBrowser = findChromium() === null && !onCi;
const skipped: string[] = [];
if (skipEtcd)
  skipped.push(`SKIPPED: the etcd tests (test/*.etcd.test.ts): etcd not found; install it: ${ETCD_INSTALL_HINT}`);
if (skipBrowser)
  skipped.push(
    `SKIPPED: the dashboard's browser tests (test/**/*.browser.test.ts): Chromium not found; install it: ${CHROMIUM_INSTALL_HINT}`,
  );
if (skipped.length > 0) process.env['MUSTER_TESTS_SKIPPED'] = skipped.join('\n');

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [
      ...configDefaults.exclude,
      ...(skipEtcd ? ['test/**/*.etcd.test.ts'] : []),
      ...(skipBrowser ? ['test/**/*.browser.test.ts'] : []),
    ],
    globalSetup: skipped.length > 0 ? ['test/support/etcd-skip-notice.ts'] : [],
    // Two cores: at most two test files at once.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
