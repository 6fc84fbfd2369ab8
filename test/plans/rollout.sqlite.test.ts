import { describeRollout } from './rollout-suite.js';

describeRollout('sqlite', async () => ({ kind: 'sqlite', dataDir: ':memory:' }));
