/**
 * The backend conformance suite on SQLite: once on a data folder, once in memory.
 * Both run on a ManualClock, so lease expiry takes microseconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SqliteBackend } from '../src/backends/sqlite/sqlite-backend.js';
import { ManualClock } from '../src/core/clock.js';
import { describeBackend } from './conformance/backend-suite.js';
import type { BackendHarness } from './conformance/harness.js';

/** Let the backend react to fired timers (expiry writes are queued, then committed). */
async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
}

function sqliteHarness(dataDir: string, cleanup: () => void): BackendHarness {
  const clock = new ManualClock();
  const backend = SqliteBackend.open({ dataDir, clock });
  return {
    backend,
    async advance(ms) {
      clock.advance(ms);
      await settle();
    },
    async close() {
      await backend.close();
      cleanup();
    },
  };
}

describeBackend(
  'sqlite (data folder)',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'muster-conformance-'));
    return sqliteHarness(dir, () => rmSync(dir, { recursive: true, force: true }));
  },
  { minLeaseTtl: 1 },
);

describeBackend('sqlite (in memory)', async () => sqliteHarness(':memory:', () => undefined), { minLeaseTtl: 1 });
