/**
 * The node registry on a backend (run on SQLite and on etcd by
 * registry.sqlite.test.ts and registry.etcd.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NodeRegistration } from '../../src/api/agent-protocol.js';
import { systemClock } from '../../src/core/clock.js';
import { InvalidArgumentError, LeaseNotFoundError, NodeNotFoundError } from '../../src/core/errors.js';
import {
  getNode,
  listNodes,
  nodeLease,
  registerNode,
  removeNode,
  watchNodeLiveness,
} from '../../src/nodes/registry.js';
import type { NodeLivenessEvent } from '../../src/nodes/registry.js';
import type { BackendHarness, MakeHarness } from '../conformance/harness.js';
import { eventually, rejection } from '../conformance/harness.js';

const reg = (lease: string, over: Partial<NodeRegistration> = {}): NodeRegistration => ({
  lease,
  tags: [],
  attrs: {},
  facts: {},
  ...over,
});

export function describeRegistry(name: string, make: MakeHarness, options: { minLeaseTtl: number }): void {
  describe(`node registry on ${name}`, () => {
    let h: BackendHarness;
    beforeEach(async () => {
      h = await make();
    });
    afterEach(async () => {
      await h.close();
    });

    it('registers, lists with a query, shows and removes nodes', async () => {
      const { backend } = h;
      const lease = (await backend.grantLease(60)).id;
      await registerNode(
        backend,
        systemClock,
        'web-1',
        reg(lease, { tags: ['web'], attrs: { role: 'web', env: 'prod' } }),
      );
      await registerNode(
        backend,
        systemClock,
        'web-2',
        reg(lease, { tags: ['web', 'canary'], attrs: { role: 'web' } }),
      );
      const db = await registerNode(
        backend,
        systemClock,
        'db-1',
        reg(lease, { attrs: { role: 'db', env: 'prod' }, facts: { os: 'linux', cpus: 2 } }),
      );
      expect(db).toMatchObject({ name: 'db-1', status: 'up', facts: { os: 'linux', cpus: 2 } });
      expect((await listNodes(backend, systemClock)).map((n) => n.name)).toEqual(['db-1', 'web-1', 'web-2']);
      expect((await listNodes(backend, systemClock, 'env:prod')).map((n) => n.name)).toEqual(['db-1', 'web-1']);
      expect((await listNodes(backend, systemClock, 'role:web AND NOT tag:canary')).map((n) => n.name)).toEqual([
        'web-1',
      ]);
      expect((await listNodes(backend, systemClock, 'fact.os:linux')).map((n) => n.name)).toEqual(['db-1']);
      await expect(listNodes(backend, systemClock, 'role:(')).rejects.toMatchObject({ code: 'invalid_query' });
      expect(await getNode(backend, systemClock, 'web-2')).toMatchObject({
        name: 'web-2',
        status: 'up',
        tags: ['web', 'canary'],
        attrs: { role: 'web' },
      });
      expect(await nodeLease(backend, 'web-2')).toBe(lease);
      await removeNode(backend, 'web-2');
      await rejection(() => getNode(backend, systemClock, 'web-2'), NodeNotFoundError);
      await rejection(() => removeNode(backend, 'web-2'), NodeNotFoundError);
      expect((await listNodes(backend, systemClock)).map((n) => n.name)).toEqual(['db-1', 'web-1']);
    });

    it('a node is down when its lease ends, keeps its record and first registration time, and comes back up', async () => {
      const { backend } = h;
      const ttl = options.minLeaseTtl;
      const first = (await backend.grantLease(ttl)).id;
      const registered = await registerNode(backend, systemClock, 'n1', reg(first, { tags: ['a'] }));
      const live = watchNodeLiveness(backend, { fromRevision: (await backend.revision()) + 1 });
      const seen: NodeLivenessEvent[] = [];
      const reading = (async () => {
        for await (const batch of live) seen.push(...batch);
      })();
      // No keepalive: the lease runs out.
      await h.advance(ttl * 1000 + 500);
      await eventually(async () => expect((await getNode(backend, systemClock, 'n1')).status).toBe('down'), 15_000);
      expect(await nodeLease(backend, 'n1')).toBeNull();
      const down = await getNode(backend, systemClock, 'n1');
      expect(down.tags).toEqual(['a']);
      expect(down.lastSeen).toBe(registered.lastSeen);
      expect((await listNodes(backend, systemClock, 'status:down')).map((n) => n.name)).toEqual(['n1']);
      await eventually(() => expect(seen.map((e) => [e.name, e.status])).toEqual([['n1', 'down']]));
      const second = (await backend.grantLease(60)).id;
      const again = await registerNode(backend, systemClock, 'n1', reg(second, { tags: ['b'] }));
      expect(again.status).toBe('up');
      expect(again.tags).toEqual(['b']);
      expect(again.registeredAt).toBe(registered.registeredAt);
      await eventually(() =>
        expect(seen.map((e) => [e.name, e.status])).toEqual([
          ['n1', 'down'],
          ['n1', 'up'],
        ]),
      );
      expect(seen[1]!.lease).toBe(second);
      live.close();
      await reading;
    });

    it('re-registering on a new lease moves the node to it: the old lease ending leaves it up', async () => {
      const { backend } = h;
      const old = (await backend.grantLease(60)).id;
      await registerNode(backend, systemClock, 'n2', reg(old));
      const fresh = (await backend.grantLease(60)).id;
      await registerNode(backend, systemClock, 'n2', reg(fresh));
      await backend.revokeLease(old);
      expect((await getNode(backend, systemClock, 'n2')).status).toBe('up');
      await backend.revokeLease(fresh);
      expect((await getNode(backend, systemClock, 'n2')).status).toBe('down');
    });

    it('refuses bad names, tags, attributes and dead leases, writing nothing', async () => {
      const { backend } = h;
      const lease = (await backend.grantLease(60)).id;
      const before = await backend.revision();
      for (const bad of ['', 'a/b', '../x', 'a b', 'x'.repeat(129), '-lead']) {
        await rejection(() => registerNode(backend, systemClock, bad, reg(lease)), InvalidArgumentError);
      }
      await rejection(
        () => registerNode(backend, systemClock, 'ok', reg(lease, { tags: ['a b'] })),
        InvalidArgumentError,
      );
      await rejection(
        () => registerNode(backend, systemClock, 'ok', reg(lease, { attrs: { tag: 'x' } })),
        InvalidArgumentError,
      );
      await rejection(
        () => registerNode(backend, systemClock, 'ok', reg(lease, { attrs: { 'a b': 'x' } })),
        InvalidArgumentError,
      );
      await rejection(() => registerNode(backend, systemClock, 'ok', reg('7fffffff')), LeaseNotFoundError);
      expect(await backend.revision()).toBe(before);
      expect(await listNodes(backend, systemClock)).toEqual([]);
    });

    it('concurrent registrations of many nodes all land', async () => {
      const { backend } = h;
      const lease = (await backend.grantLease(60)).id;
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          registerNode(backend, systemClock, `c-${i % 20}`, reg(lease, { attrs: { i: String(i) } })),
        ),
      );
      const nodes = await listNodes(backend, systemClock);
      expect(nodes).toHaveLength(20);
      expect(nodes.every((n) => n.status === 'up')).toBe(true);
    });
  });
}
