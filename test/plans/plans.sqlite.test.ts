import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePlans } from './plans-suite.js';

describePlans('sqlite', async (durable) => ({
  kind: 'sqlite',
  dataDir: durable ? mkdtempSync(join(tmpdir(), 'muster-plans-')) : ':memory:',
}));
