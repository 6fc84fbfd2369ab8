import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { describeJobs, describeJobsAuth } from './jobs-suite.js';

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

describeJobs('sqlite', async (durable) => {
  if (!durable) return { kind: 'sqlite', dataDir: ':memory:' };
  const dataDir = mkdtempSync(join(tmpdir(), 'muster-jobs-'));
  folders.push(dataDir);
  return { kind: 'sqlite', dataDir };
});
describeJobsAuth('sqlite', async () => ({ kind: 'sqlite', dataDir: ':memory:' }));
