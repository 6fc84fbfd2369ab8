/**
 * The primitives conformance and safety suites on a real etcd member (one for the
 * whole file), each test on a fresh EtcdBackend under its own etcd prefix.
 */
import { describePrimitiveSafety, describePrimitives } from './conformance/primitives-suite.js';
import { etcdForFile } from './support/etcd-harness.js';

const etcd = etcdForFile();

describePrimitives('etcd', etcd.harness, { minLeaseTtl: 2 });
describePrimitiveSafety('etcd', etcd.harness, Number(process.env['MUSTER_SAFETY_ROUNDS'] ?? 500));
