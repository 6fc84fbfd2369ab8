import { etcdForFile } from '../support/etcd-harness.js';
import { plansOnRealAgents } from './plans-real-agents-suite.js';

const etcd = etcdForFile();

// On etcd, the cases where the store matters most: ordering, rollback (the desired
// states put back), a server killed mid-plan (its duty's session must lapse before the
// new server runs the plan on), and a node gone mid-plan.
plansOnRealAgents({ kind: 'etcd', endpoints: () => etcd.cluster().endpoints }, [1, 5, 7, 9]);
