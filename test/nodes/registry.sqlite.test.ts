import { describeRegistry } from './registry-suite.js';

describeRegistry('sqlite', async () => ({ kind: 'sqlite', dataDir: ':memory:' }));
