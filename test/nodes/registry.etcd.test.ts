import { etcdForFile } from '../support/etcd-harness.js';
import { uniquePrefix } from '../conformance/harness.js';
import { describeRegistry } from './registry-suite.js';

const etcd = etcdForFile();
describeRegistry('etcd', async () => ({
  kind: 'etcd' as const,
  endpoints: etcd.cluster().endpoints,
  prefix: uniquePrefix(),
}));
