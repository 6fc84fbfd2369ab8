import { afterEach, describe, expect, it } from 'vitest';
import { virtualRuntime } from '../../src/core/runtime.js';
import type { ServerState } from '../../src/server/muster-server.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('MusterServer: one object, one life, on a virtual clock', () => {
  const servers: MusterServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop();
  });

  it('goes STARTING → RUNNING → DRAINING → STOPPED, and serves HTTP while RUNNING', async () => {
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
    });
    const seen: ServerState[] = [];
    server.onStateChange((state) => seen.push(state));
    expect(server.state).toBe('RUNNING');
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const put = await fetch(`${server.url}/v1/kv/a`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(200);
    await server.stop();
    await server.stop(); // a second stop waits for the same one
    expect(seen).toEqual(['DRAINING', 'STOPPED']);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('runs the duties on the embedded store, on the injected clock: leases expire and history is compacted only when it moves', async () => {
    const runtime = virtualRuntime(3);
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      auth: 'off',
      port: 0,
      logger: false,
      runtime,
      retention: 10,
      compactionIntervalMs: 60_000,
    });
    servers.push(server);
    await eventually(() => expect(server.duties.state).toBe('LEADING'));

    const grant = (await (
      await fetch(`${server.url}/v1/leases`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ttl: 30 }),
      })
    ).json()) as { id: string };
    await fetch(`${server.url}/v1/kv/ephemeral?lease=${grant.id}`, { method: 'PUT', body: 'here' });
    for (let i = 0; i < 40; i++) await fetch(`${server.url}/v1/kv/counter`, { method: 'PUT', body: String(i) });
    await settle();

    // No time has passed: the lease lives and nothing was compacted.
    expect((await fetch(`${server.url}/v1/kv/ephemeral`)).status).toBe(200);
    expect(await server.backend.oldestRevision()).toBe(1);

    // A minute of virtual time: the lease has expired and the compaction duty has run.
    for (let i = 0; i < 60; i++) {
      runtime.clock.advance(1000);
      await settle();
    }
    await eventually(async () => expect((await fetch(`${server.url}/v1/kv/ephemeral`)).status).toBe(404));
    const revision = await server.backend.revision();
    await eventually(async () => expect(await server.backend.oldestRevision()).toBe(revision - 10 + 1));
    // The duties' own session was kept alive on the same clock all along.
    expect(server.duties.state).toBe('LEADING');
  });

  it('refuses a port in use with a message naming it, and leaves nothing open', async () => {
    const first = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
    });
    servers.push(first);
    const port = Number(new URL(first.url).port);
    await expect(
      MusterServer.start({ store: { kind: 'sqlite', dataDir: ':memory:' }, port, logger: false, auth: 'off' }),
    ).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+: the address is in use/);
  });
});
