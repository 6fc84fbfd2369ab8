import { expect, test } from 'vitest';
import { MusterServer } from '../src/server/muster-server.js';
import { uniquePrefix } from './conformance/harness.js';
import { etcdForFile } from './support/etcd-harness.js';

const etcd = etcdForFile();

/**
 * A server that has just taken the duties over (its duties still loading) stops at
 * once: each duty must see a leadership that ended while it was starting. The job
 * scheduler once waited on its watch forever here, and `muster server` hung on stop.
 */
test('a server stopped right after taking the duties over stops promptly', async () => {
  const store = { kind: 'etcd' as const, endpoints: etcd.cluster().endpoints, prefix: uniquePrefix() };
  for (let round = 0; round < 3; round++) {
    const a = await MusterServer.start({ store, port: 0, auth: 'off', logger: false, dutiesTtl: 3 });
    const b = await MusterServer.start({ store, port: 0, auth: 'off', logger: false, dutiesTtl: 3 });
    await a.stop();
    // Stop it the moment it leads, while its duties are still loading.
    while (b.duties.state !== 'LEADING') await new Promise((r) => setImmediate(r));
    const started = Date.now();
    await b.stop();
    expect(Date.now() - started, `round ${round}`).toBeLessThan(10_000);
  }
}, 120_000);
