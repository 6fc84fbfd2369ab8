import { etcdForFile } from '../support/etcd-harness.js';
import { uniquePrefix } from '../conformance/harness.js';
import { describeHooks } from './hooks-suite.js';

const etcd = etcdForFile();
describeHooks('etcd', async () => ({ kind: 'etcd', endpoints: etcd.cluster().endpoints, prefix: uniquePrefix() }));
