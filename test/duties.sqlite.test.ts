import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../src/backends/sqlite/sqlite-backend.js';
import { DutyRunner, compactionDuty } from '../src/server/duties/index.js';
import type { Duty } from '../src/server/duties/index.js';
import { leader } from '../src/primitives/index.js';
import { eventually } from './conformance/harness.js';
import { BackendUnavailableError } from '../src/core/errors.js';
import { virtualRuntime } from '../src/core/runtime.js';

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
    const backend = SqliteBackend.open({ dataDir: ':memory:' });
    cleanups.push(() => backend.close());
    for (let i = 0; i < 30; i++) await backend.put('/t/c', text(String(i)));
    const runner = new DutyRunner({ backend, serverId: 'solo' });
    runner.register(compactionDuty({ retention: 10, intervalMs: 5 }));
    cleanups.push(() => runner.stop());
    runner.start();
    await eventually(async () => expect(await backend.oldestRevision()).toBeGreaterThanOrEqual(21));
  });
});

/** The backend, except that while `cut.on` its lease calls fail as if the store were out of reach. */
function cutOff(backend: SqliteBackend, cut: { on: boolean; keepAlives: number }): SqliteBackend {
  return new Proxy(backend, {
    get(target, prop) {
      if (prop === 'keepAlive') cut.keepAlives++;
      if (cut.on && (prop === 'keepAlive' || prop === 'grantLease')) {
        return () => Promise.reject(new BackendUnavailableError('cut off from the store'));
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Let promises and immediates settle (the store answers on setImmediate). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('a duty leader cut off from the store', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('steps down within its TTL when no keepalive succeeds, and runs no duty after', async () => {
    const runtime = virtualRuntime(7);
    const clock = runtime.clock;
    const backend = SqliteBackend.open({ dataDir: ':memory:', clock });
    cleanups.push(() => backend.close());
    const cut = { on: false, keepAlives: 0 };
    const runs: number[] = [];
    const runner = new DutyRunner({ backend: cutOff(backend, cut), serverId: 'a', sessionTtl: 6, runtime });
    runner.register({ name: 'count', intervalMs: 500, run: async () => void runs.push(clock.now()) });
    cleanups.push(() => runner.stop());
    runner.start();
    await eventually(() => expect(runner.state).toBe('LEADING'));
    for (let i = 0; i < 10; i++) {
      clock.advance(500);
      await settle();
    }
    expect(runs.length).toBeGreaterThan(5);

    cut.on = true;
    const cutAt = clock.now();
    for (let i = 0; i < 30; i++) {
      clock.advance(500);
      await settle();
    }
    // The last successful keepalive was sent at most ttl/3 before the cut: the lease
    // may live until then + TTL, and not a moment longer may this server lead.
    expect(runs.filter((at) => at > cutAt + 6000)).toEqual([]);
    expect(runner.state).not.toBe('LEADING');
  });

  it('sends no keepalive after stop, even when one was in flight', async () => {
    const runtime = virtualRuntime(8);
    const clock = runtime.clock;
    const backend = SqliteBackend.open({ dataDir: ':memory:', clock });
    cleanups.push(() => backend.close());
    let release: () => void = () => undefined;
    let hung = 0;
    let sentAfterStop = 0;
    let stopped = false;
    const slow = new Proxy(backend, {
      get(target, prop) {
        if (prop === 'keepAlive') {
          return (id: string) => {
            if (stopped) sentAfterStop++;
            if (hung++ > 0) return backend.keepAlive(id);
            // The first keepalive hangs until after stop(), then succeeds (its answer was only late).
            return new Promise((resolve) => {
              release = () => resolve({ id, ttl: 3 });
            });
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const runner = new DutyRunner({ backend: slow, serverId: 'a', sessionTtl: 3, runtime });
    runner.start();
    await eventually(() => expect(runner.state).toBe('LEADING'));
    clock.advance(1000); // ttl/3: the first keepalive goes out, and hangs
    await settle();
    expect(hung).toBe(1);
    await runner.stop();
    stopped = true;
    release();
    for (let i = 0; i < 20; i++) {
      clock.advance(1000);
      await settle();
    }
    expect(sentAfterStop).toBe(0);
    expect(runner.state).toBe('STOPPED');
  });
});
