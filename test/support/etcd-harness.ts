/**
 * One etcd member for a whole test file, and the conformance suites' harness on
 * it: a fresh EtcdBackend under a prefix of its own for every test, so tests
 * cannot see each other's keys. `advance` is a real sleep: etcd's leases run on
 * etcd's clock.
 */
import { afterAll, beforeAll } from 'vitest';
import { EtcdBackend } from '../../src/backends/etcd/index.js';
import type { BackendHarness } from '../conformance/harness.js';
import { uniquePrefix } from '../conformance/harness.js';
import { startEtcd, type EtcdCluster } from './etcd-server.js';

/** Start etcd before the file's tests and stop it after them; `cluster()` is it, while it runs. */
export function etcdForFile(): { cluster: () => EtcdCluster; harness: () => Promise<BackendHarness> } {
  let etcd: EtcdCluster | undefined;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });
  const cluster = (): EtcdCluster => {
    if (!etcd) throw new Error('etcd did not start');
    return etcd;
  };
  return {
    cluster,
    async harness() {
      const backend = await EtcdBackend.open({ endpoints: cluster().endpoints, prefix: uniquePrefix() });
      return {
        backend,
        advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        close: () => backend.close(),
      };
    },
  };
}
