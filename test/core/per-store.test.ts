import { describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { perStore } from '../../src/core/per-store.js';
import { virtualRuntime } from '../../src/core/runtime.js';
import { recentNodes } from '../../src/jobs/job-store.js';

describe('perStore', () => {
  it('makes one value per store, the first time it is asked for, and gives it back after', async () => {
    const runtime = virtualRuntime();
    const a = SqliteBackend.open({ dataDir: ':memory:', clock: runtime.clock });
    const b = SqliteBackend.open({ dataDir: ':memory:', clock: runtime.clock });
    let made = 0;
    const counter = perStore(() => ({ n: ++made }));
    expect(made).toBe(0);
    expect(counter(a)).toBe(counter(a));
    expect(counter(a).n).toBe(1);
    expect(counter(b).n).toBe(2);
    expect(made).toBe(2);
    // The job store's remembered node states are kept that way: shared per store, not across stores.
    expect(recentNodes(a)).toBe(recentNodes(a));
    expect(recentNodes(a)).not.toBe(recentNodes(b));
    await a.close();
    await b.close();
  });
});
