import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { ManualClock } from '../../src/core/clock.js';
import type { BackendHarness } from '../conformance/harness.js';
import { describeRegistry } from './registry-suite.js';

async function memoryHarness(): Promise<BackendHarness> {
  const clock = new ManualClock();
  const backend = SqliteBackend.open({ dataDir: ':memory:', clock });
  return {
    backend,
    advance: async (ms) => {
      clock.advance(ms);
      await new Promise((resolve) => setImmediate(resolve));
    },
    close: () => backend.close(),
  };
}

describeRegistry('sqlite (memory)', memoryHarness, { minLeaseTtl: 1 });
