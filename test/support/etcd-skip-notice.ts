/** vitest globalSetup while the etcd tests are left out: one loud line at the start and at the end of the run. */
function shout(): void {
  const line = process.env['MUSTER_ETCD_SKIPPED'] ?? 'SKIPPED: the etcd tests';
  process.stderr.write(`\n\u001b[1;33m${'!'.repeat(8)} ${line} ${'!'.repeat(8)}\u001b[0m\n\n`);
}

export function setup(): void {
  shout();
}

export function teardown(): void {
  shout();
}
