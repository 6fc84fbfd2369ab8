import { describeJobs } from './jobs-suite.js';

describeJobs('sqlite', async () => ({ kind: 'sqlite', dataDir: ':memory:' }));
