/**
 * A real `muster server` process (built dist/) on the embedded store is killed with
 * SIGKILL after acknowledged writes and before their delivery: after a restart on
 * the same folder, every write is delivered, in order.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import type { ServerProcess } from '../cli/cli-harness.js';
import { assertBuilt, startServerProcess, TEST_ADMIN_TOKEN } from '../cli/cli-harness.js';
import { eventually } from '../conformance/harness.js';
import { Receiver } from './receiver.js';

describe('webhooks survive SIGKILL (sqlite, real process)', () => {
  let dataDir = '';
  let receiver: Receiver;
  const servers: ServerProcess[] = [];
  beforeAll(async () => {
    assertBuilt();
    dataDir = await mkdtemp(join(tmpdir(), 'muster-hooks-crash-'));
    receiver = await new Receiver().start();
  });
  afterAll(async () => {
    for (const s of servers)
      if (s.cli.child.exitCode === null && s.cli.child.signalCode === null) await s.cli.stop('SIGKILL');
    await receiver.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('delivers after restart what was acknowledged before the kill', async () => {
    const first = await startServerProcess(['--data-dir', dataDir]);
    servers.push(first);
    let client = new MusterClient({ endpoints: first.url, token: TEST_ADMIN_TOKEN });
    await client.addHook({ name: 'crash', prefix: '/c/', url: receiver.url });
    // The receiver never answers before the kill: nothing can have been delivered.
    receiver.script = Array.from({ length: 1000 }, () => 'hang' as const);
    const acked: number[] = [];
    for (let i = 0; i < 20; i++) acked.push((await client.put(`/c/${i}`, `v${i}`)).revision);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await first.cli.stop('SIGKILL');
    expect(first.cli.child.signalCode).toBe('SIGKILL');
    expect(receiver.received).toHaveLength(0);
    receiver.script = [];
    const second = await startServerProcess(['--data-dir', dataDir]);
    servers.push(second);
    client = new MusterClient({ endpoints: second.url, token: TEST_ADMIN_TOKEN });
    await eventually(() => expect(receiver.received.length).toBeGreaterThanOrEqual(20), 20_000);
    const revisions = receiver.bodies<{ revision: number }>().map((b) => b.revision);
    expect(revisions).toEqual(acked);
    await eventually(async () => expect((await client.getHook('crash')).delivered).toBe(20));
    await second.cli.stop('SIGTERM');
  }, 60_000);
});
