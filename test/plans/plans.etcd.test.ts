import { etcdForFile } from '../support/etcd-harness.js';
import { uniquePrefix } from '../conformance/harness.js';
import { describePlans } from './plans-suite.js';

const etcd = etcdForFile();
// A durable store on etcd is the same prefix again: a restarted server finds the plan there.
describePlans('etcd', async () => ({
  kind: 'etcd' as const,
  endpoints: etcd.cluster().endpoints,
  prefix: uniquePrefix(),
}));
