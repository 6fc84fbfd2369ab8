import { ManualClock } from '../src/core/clock.js';
import { SqliteBackend } from '../src/backends/sqlite/sqlite-backend.js';
import type { BackendHarness } from './conformance/harness.js';
import { describePrimitiveSafety, describePrimitives } from './conformance/primitives-suite.js';

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

describePrimitives('sqlite (memory)', memoryHarness, { minLeaseTtl: 1 });
describePrimitiveSafety('sqlite (memory)', memoryHarness, Number(process.env.MUSTER_SAFETY_ROUNDS ?? 500));
