import { etcdForFile } from '../support/etcd-harness.js';
import { uniquePrefix } from '../conformance/harness.js';
import { describeJobs, describeJobsAuth } from './jobs-suite.js';

const etcd = etcdForFile();
const store = async () => ({ kind: 'etcd' as const, endpoints: etcd.cluster().endpoints, prefix: uniquePrefix() });
describeJobs('etcd', store);
describeJobsAuth('etcd', store);
