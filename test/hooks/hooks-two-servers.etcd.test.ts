/**
 * Two servers in front of one etcd: exactly one delivers (the duty's leader); when it
 * stops, the other goes on from the saved cursor. Every write is delivered, in
 * order, with no repeats beyond at-least-once (a repeat keeps its idempotency key).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually, uniquePrefix } from '../conformance/harness.js';
import { etcdForFile } from '../support/etcd-harness.js';
import { Receiver } from './receiver.js';

const etcd = etcdForFile();

describe('webhooks on etcd with two servers', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  });

  it('one server delivers; after it stops the other goes on from the cursor', async () => {
    const receiver = await new Receiver().start();
    cleanup.push(() => receiver.stop());
    const store = { kind: 'etcd' as const, endpoints: etcd.cluster().endpoints, prefix: uniquePrefix() };
    const start = (id: string) =>
      MusterServer.start({ store, port: 0, logger: false, auth: 'off', dutiesTtl: 2, serverId: id });
    const a = await start('a');
    const b = await start('b');
    const stopped = new Set<MusterServer>();
    cleanup.push(async () => {
      for (const s of [a, b]) if (!stopped.has(s)) await s.stop();
    });
    const client = new MusterClient({ endpoints: [a.url, b.url] });
    await client.addHook({ name: 'two', prefix: '/t/', url: receiver.url });
    const acked: number[] = [];
    for (let i = 0; i < 30; i++) acked.push((await client.put(`/t/${i}`, `v${i}`)).revision);
    await eventually(() => expect(receiver.received.length).toBeGreaterThanOrEqual(30), 15_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Exactly one server delivered: no duplicates at all while nothing failed. (On a
    // loaded machine the 2 s duties session can lapse and the duties change hands:
    // then the new term goes on from the saved cursor, and repeats are allowed.)
    const first = receiver.bodies<{ revision: number }>().map((x) => x.revision);
    if (a.duties.leaderships + b.duties.leaderships === 1) expect(first).toEqual(acked);
    else expect([...new Set(first)]).toEqual(acked);
    const leader = a.duties.state === 'LEADING' ? a : b;
    const other = leader === a ? b : a;
    expect(other.duties.state).not.toBe('LEADING');
    await leader.stop();
    stopped.add(leader);
    const survivor = new MusterClient({ endpoints: other.url });
    for (let i = 30; i < 60; i++) acked.push((await survivor.put(`/t/${i}`, `v${i}`)).revision);
    await eventually(() => expect(other.duties.state).toBe('LEADING'), 15_000);
    await eventually(() => expect(receiver.received.length).toBeGreaterThanOrEqual(60), 20_000);
    const seen = receiver.received.map((r) => r.headers['x-muster-delivery'] as string);
    const revisions = receiver.bodies<{ revision: number }>().map((x) => x.revision);
    // Every acknowledged write, in order; a repeat (at least once) carries the same key.
    expect([...new Set(revisions)]).toEqual(acked);
    expect(new Set(seen).size).toBe(60);
  }, 60_000);
});
