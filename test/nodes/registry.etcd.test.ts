import { etcdForFile } from '../support/etcd-harness.js';
import { describeRegistry } from './registry-suite.js';

const etcd = etcdForFile();

describeRegistry('etcd', etcd.harness, { minLeaseTtl: 2 });
