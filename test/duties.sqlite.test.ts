import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../src/backends/sqlite/sqlite-backend.js';
import { DutyRunner, compactionDuty } from '../src/server/duties/index.js';
import type { Duty } from '../src/server/duties/index.js';
import { leader } from '../src/primitives/index.js';
import { eventually } from './conformance/harness.js';

const text = (s: string) => new TextEncoder().encode(s);

/** A duty that records, through a fenced write, which server ran it. */
function recorder(runs: { server: string; token: number; accepted: boolean }[]): Duty {
  return {
    name: 'record',
    intervalMs: 10,
    async run({ backend, fence, serverId, token }) {
      const r = await backend.txn({
        compare: [fence],
        success: [{ type: 'put', key: '/t/duty/last', value: text(serverId) }],
        failure: [],
      });
      runs.push({ server: serverId, token, accepted: r.succeeded });
    },
  };
}

describe('duties on sqlite', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('runs duties on one server only, and moves them when the leader loses its session', async () => {
    const backend = SqliteBackend.open({ dataDir: ':memory:' });
    cleanups.push(() => backend.close());
    const runs: { server: string; token: number; accepted: boolean }[] = [];
    const a = new DutyRunner({ backend, serverId: 'server-a', sessionTtl: 5 });
    const b = new DutyRunner({ backend, serverId: 'server-b', sessionTtl: 5 });
    a.register(recorder(runs));
    b.register(recorder(runs));
    cleanups.push(
      () => a.stop(),
      () => b.stop(),
    );
    a.start();
    await eventually(() => expect(a.state).toBe('LEADING'));
    b.start();
    await eventually(() => expect(b.state).toBe('CAMPAIGNING'));
    await eventually(() => expect(runs.length).toBeGreaterThan(5));
    expect(new Set(runs.map((r) => r.server))).toEqual(new Set(['server-a']));

    // server-a's session dies (as if the process froze past its TTL).
    const current = await leader(backend, 'muster-duties');
    await backend.revokeLease(current?.lease as string);
    await eventually(() => expect(b.state).toBe('LEADING'));
    const handover = runs.length;
    await eventually(() =>
      expect(runs.slice(handover).filter((r) => r.server === 'server-b').length).toBeGreaterThan(3),
    );
    // After the handover, every accepted write came from the new leader.
    const afterB = runs.slice(runs.findIndex((r, i) => i >= handover && r.server === 'server-b'));
    expect(afterB.filter((r) => r.accepted).every((r) => r.server === 'server-b')).toBe(true);
    const tokens = runs.map((r) => r.token);
    expect(Math.max(...tokens.filter((_, i) => runs[i]?.server === 'server-b'))).toBeGreaterThan(
      Math.max(...tokens.filter((_, i) => runs[i]?.server === 'server-a')),
    );
    expect(new TextDecoder().decode((await backend.get('/t/duty/last'))?.value)).toBe('server-b');
  });

  it('gives the duties up on stop, to the next server', async () => {
    const backend = SqliteBackend.open({ dataDir: ':memory:' });
    cleanups.push(() => backend.close());
    const runs: { server: string; token: number; accepted: boolean }[] = [];
    const a = new DutyRunner({ backend, serverId: 'server-a' });
    const b = new DutyRunner({ backend, serverId: 'server-b' });
    a.register(recorder(runs));
    b.register(recorder(runs));
    cleanups.push(() => b.stop());
    a.start();
    await eventually(() => expect(a.state).toBe('LEADING'));
    b.start();
    await a.stop();
    expect(a.state).toBe('STOPPED');
    await eventually(() => expect(b.state).toBe('LEADING'));
    expect(await backend.listLeases()).toHaveLength(1);
  });

  it('compacts history beyond the retention', async () => {
    const backend = SqliteBackend.open({ dataDir: ':memory:', retention: 1_000_000 });
    cleanups.push(() => backend.close());
    for (let i = 0; i < 30; i++) await backend.put('/t/c', text(String(i)));
    const runner = new DutyRunner({ backend, serverId: 'solo' });
    runner.register(compactionDuty({ retention: 10, intervalMs: 5 }));
    cleanups.push(() => runner.stop());
    runner.start();
    await eventually(async () => expect(await backend.oldestRevision()).toBeGreaterThanOrEqual(21));
  });
});
