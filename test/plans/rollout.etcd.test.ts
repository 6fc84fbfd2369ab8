import { etcdForFile } from '../support/etcd-harness.js';
import { uniquePrefix } from '../conformance/harness.js';
import { describeRollout } from './rollout-suite.js';

const etcd = etcdForFile();
describeRollout('etcd', async () => ({
  kind: 'etcd' as const,
  endpoints: etcd.cluster().endpoints,
  prefix: uniquePrefix(),
}));
