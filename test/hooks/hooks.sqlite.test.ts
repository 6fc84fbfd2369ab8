import { describeHooks } from './hooks-suite.js';

describeHooks('sqlite', async () => ({ kind: 'sqlite', dataDir: ':memory:' }));
