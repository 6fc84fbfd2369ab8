import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../src/client/muster-client.js';
import { Session } from '../src/client/session.js';
import { BackendUnavailableError } from '../src/core/errors.js';
import type { WatchEvent } from '../src/core/backend.js';
import { assertBuilt, startServerProcess, TEST_ADMIN_TOKEN } from './cli/cli-harness.js';
import type { ServerProcess } from './cli/cli-harness.js';
import { eventually } from './conformance/harness.js';
import { startEtcd } from './support/etcd-server.js';
import type { EtcdCluster } from './support/etcd-server.js';

interface DutiesLeader {
  server: string;
  token: number;
  at: string;
}

/** Several stateless muster servers in front of one etcd (issue 4). */
describe('two muster servers on one etcd', () => {
  let etcd: EtcdCluster;
  const servers: ServerProcess[] = [];
  let prefix: string;

  const start = async () => {
    const server = await startServerProcess([
      '--etcd',
      etcd.endpoints.join(','),
      '--etcd-prefix',
      prefix,
      '--duties-ttl',
      '3s',
    ]);
    servers.push(server);
    return server;
  };
  const dutiesLeader = async (client: MusterClient): Promise<DutiesLeader> =>
    JSON.parse(await client.getText('/muster/duties/leader')) as DutiesLeader;

  beforeAll(async () => {
    assertBuilt();
    etcd = await startEtcd();
    prefix = `/mt-${Math.random().toString(36).slice(2, 8)}/`;
    await start();
    await start();
  }, 60_000);
  afterAll(async () => {
    for (const s of servers)
      if (s.cli.child.exitCode === null && s.cli.child.signalCode === null) await s.cli.stop('SIGKILL');
    await etcd?.stop();
  });

  it('a watch through one server sees writes made through the other', async () => {
    const [one, two] = servers.map((s) => new MusterClient({ endpoints: s.url, token: TEST_ADMIN_TOKEN }));
    const start = (await one!.list('/shared/')).revision;
    const seen: WatchEvent[] = [];
    const stop = new AbortController();
    const watching = (async () => {
      for await (const event of one!.watch('/shared/', { fromRevision: start + 1, signal: stop.signal })) {
        seen.push(event);
        if (seen.length === 3) stop.abort();
      }
    })().catch(() => undefined);
    for (const v of ['a', 'b', 'c']) await two!.put(`/shared/${v}`, v);
    await watching;
    expect(seen.map((e) => e.kv.key)).toEqual(['/shared/a', '/shared/b', '/shared/c']);
    expect(await one!.getText('/shared/b')).toBe('b');
  });

  it('a lock taken through one server blocks a contender on the other', async () => {
    const [one, two] = servers.map((s) => new MusterClient({ endpoints: s.url, token: TEST_ADMIN_TOKEN }));
    const s1 = await Session.start(one!, { ttlSeconds: 10 });
    const s2 = await Session.start(two!, { ttlSeconds: 10 });
    const held = await one!.acquireLock('cross', s1.leaseId);
    let got = false;
    const contender = two!.acquireLock('cross', s2.leaseId, { timeoutMs: 20_000 }).then((h) => {
      got = true;
      return h;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(got).toBe(false);
    await one!.releaseLock('cross', held);
    const next = await contender;
    expect(next.token).toBeGreaterThan(held.token);
    await two!.releaseLock('cross', next);
    await s1.close();
    await s2.close();
  });

  it('when the server leading the duties dies, the other takes them over; sessions on the survivor stay held', async () => {
    const clients = servers.map((s) => new MusterClient({ endpoints: s.url, token: TEST_ADMIN_TOKEN }));
    const first = await eventually(() => dutiesLeader(clients[0]!), 15_000);
    const leaderIndex = servers.findIndex((s) => first.server.endsWith(`:${new URL(s.url).port}/${s.cli.child.pid}`));
    expect(leaderIndex).toBeGreaterThanOrEqual(0);
    const survivor = clients[1 - leaderIndex]!;
    // A lock held through the survivor, by a session kept alive through it.
    const session = await Session.start(survivor, { ttlSeconds: 4 });
    const held = await survivor.acquireLock('survives', session.leaseId);

    const killedAt = Date.now();
    await servers[leaderIndex]!.cli.stop('SIGKILL');
    const next = await eventually(async () => {
      const now = await dutiesLeader(survivor);
      expect(now.server).not.toBe(first.server);
      return now;
    }, 15_000);
    // Taken over within one duties session TTL (3 s), plus a heartbeat.
    expect(Date.now() - killedAt).toBeLessThan(3000 + 2500);
    expect(next.token).toBeGreaterThan(first.token);
    // The heartbeat goes on from the new leader only.
    const later = await eventually(async () => {
      const now = await dutiesLeader(survivor);
      expect(Date.parse(now.at)).toBeGreaterThan(Date.parse(next.at));
      return now;
    }, 10_000);
    expect(later.server).toBe(next.server);

    expect(session.lost.aborted).toBe(false);
    expect((await survivor.lockStatus('survives')).holder?.token).toBe(held.token);
    await session.close();
  });

  it('answers 503 unavailable while etcd is down, and recovers by itself', async () => {
    const alive = servers.find((s) => s.cli.child.exitCode === null && s.cli.child.signalCode === null)!;
    const client = new MusterClient({ endpoints: alive.url, requestTimeoutMs: 15_000, token: TEST_ADMIN_TOKEN });
    await client.put('/outage/before', 'x');
    await etcd.kill(0);
    const error = await client.get('/outage/before').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    const health = await fetch(`${alive.url}/healthz`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    await etcd.restart(0);
    await eventually(async () => expect(await client.getText('/outage/before')).toBe('x'), 20_000, 250);
    await client.put('/outage/after', 'y');
    expect(await client.getText('/outage/after')).toBe('y');
  }, 60_000);
});
