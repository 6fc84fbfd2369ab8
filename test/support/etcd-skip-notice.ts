/** vitest globalSetup while test files are left out (no etcd, no Chromium): loud lines at the start and at the end of the run. */
function shout(): void {
  const lines = (process.env['MUSTER_TESTS_SKIPPED'] ?? 'SKIPPED: some tests').split('\n');
  for (const line of lines) process.stderr.write(`\n\u001b[1;33m${'!'.repeat(8)} ${line} ${'!'.repeat(8)}\u001b[0m\n`);
  process.stderr.write('\n');
}

export function setup(): void {
  shout();
}

export function teardown(): void {
  shout();
}
