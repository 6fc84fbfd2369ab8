/**
 * The primitives conformance and safety suites on a real etcd member (one for the
 * whole file), each test on a fresh EtcdBackend under its own etcd prefix.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';

import { EtcdBackend } from '../src/backends/etcd/index.js';
import type { BackendHarness } from './conformance/harness.js';
import { describePrimitiveSafety, describePrimitives } from './conformance/primitives-suite.js';
import { startEtcd, type EtcdCluster } from './support/etcd-server.js';

let etcd: EtcdCluster | undefined;

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await etcd?.stop();
});

async function etcdHarness(): Promise<BackendHarness> {
  if (!etcd) throw new Error('etcd did not start');
  const backend = await EtcdBackend.open({
    endpoints: etcd.endpoints,
    prefix: `/muster-test-${randomBytes(4).toString('hex')}/`,
  });
  return {
    backend,
    advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    close: () => backend.close(),
  };
}

describePrimitives('etcd', etcdHarness, { minLeaseTtl: 2 });
describePrimitiveSafety('etcd', etcdHarness, Number(process.env['MUSTER_SAFETY_ROUNDS'] ?? 500));
