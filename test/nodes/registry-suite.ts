/** The registry through the HTTP API on a real server: registration, liveness, queries, node tokens. */
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendConfig } from '../../src/backends/create-backend.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';

export function describeRegistry(name: string, makeStore: () => Promise<BackendConfig>): void {
  describe(`node registry (${name})`, () => {
    let server: MusterServer | null = null;
    afterEach(async () => {
      await server?.stop();
      server = null;
    });

    async function start() {
      server = await MusterServer.start({
        store: await makeStore(),
        port: 0,
        logger: false,
        auth: { adminTokenFile: null },
      });
      const adminToken = server.adminOutcome?.kind === 'printed' ? server.adminOutcome.token : '';
      const admin = new MusterClient({ endpoints: server.url, token: adminToken });
      const nodeClient = async (node: string) =>
        new MusterClient({ endpoints: server!.url, token: (await admin.createToken({ role: 'node', node })).token });
      return { admin, nodeClient };
    }

    it('an agent registers its node with its lease: up while the lease lives, down (kept) after', async () => {
      const { admin, nodeClient } = await start();
      const web3 = await nodeClient('web-3');
      const lease = await web3.grantLease(30);
      const registered = await web3.registerNode('web-3', {
        lease: lease.id,
        tags: ['web', 'canary'],
        attrs: { role: 'web', env: 'prod' },
        facts: { os: 'linux', cpus: 2, commands: ['chef-client'] },
      });
      expect(registered).toMatchObject({ name: 'web-3', status: 'up', tags: ['web', 'canary'] });
      const web4 = await nodeClient('web-4');
      const lease4 = await web4.grantLease(30);
      await web4.registerNode('web-4', {
        lease: lease4.id,
        tags: [],
        attrs: { role: 'web', env: 'staging' },
        facts: {},
      });
      expect((await admin.listNodes()).map((n) => `${n.name}:${n.status}`)).toEqual(['web-3:up', 'web-4:up']);
      expect((await admin.listNodes('role:web AND env:prod')).map((n) => n.name)).toEqual(['web-3']);
      expect((await admin.listNodes('os:linux')).map((n) => n.name)).toEqual(['web-3']);
      await web3.revokeLease(lease.id);
      const down = await admin.getNode('web-3');
      expect(down.status).toBe('down');
      expect(down.facts).toEqual({ os: 'linux', cpus: 2, commands: ['chef-client'] });
      expect((await admin.listNodes('status:down')).map((n) => n.name)).toEqual(['web-3']);
      // It comes back: registering again keeps when it was first registered.
      const again = await web3.grantLease(30);
      const back = await web3.registerNode('web-3', {
        lease: again.id,
        tags: ['web'],
        attrs: { role: 'web' },
        facts: {},
      });
      expect(back.status).toBe('up');
      expect(back.registeredAt).toBe(registered.registeredAt);
    });

    it('facts=false lists nodes without their facts, a query still matching on them; changes show at once', async () => {
      const { admin, nodeClient } = await start();
      const web3 = await nodeClient('web-3');
      const lease = await web3.grantLease(30);
      const facts = { os: 'linux', cpus: 2, hostname: 'web-3.example' };
      await web3.registerNode('web-3', { lease: lease.id, tags: ['web'], attrs: { role: 'web' }, facts });
      await admin.registerNode('db-1', { lease: (await admin.grantLease(30)).id, tags: [], attrs: {}, facts: {} });
      const full = await admin.listNodes();
      expect(full.map((n) => n.facts)).toEqual([{}, facts]);
      const lean = await admin.listNodes('os:linux', { facts: false });
      expect(lean).toEqual([
        {
          name: 'web-3',
          status: 'up',
          tags: ['web'],
          attrs: { role: 'web' },
          lastSeen: expect.any(String) as string,
        },
      ]);
      expect(Object.keys(lean[0]!)).not.toContain('facts');
      // A record read before and changed since is read again, not remembered.
      await web3.registerNode('web-3', { lease: lease.id, tags: ['web', 'canary'], attrs: { role: 'api' }, facts });
      expect((await admin.listNodes(undefined, { facts: false }))[1]).toMatchObject({
        tags: ['web', 'canary'],
        attrs: { role: 'api' },
      });
      expect(await admin.removeNode('db-1')).toBe(true);
      expect((await admin.listNodes(undefined, { facts: false })).map((n) => n.name)).toEqual(['web-3']);
      // facts=true is the default; anything else is a 400 naming the field.
      const url = `${server!.url}/v1/nodes`;
      const token = {
        authorization: `Bearer ${server!.adminOutcome?.kind === 'printed' ? server!.adminOutcome.token : ''}`,
      };
      const withFacts = (await (await fetch(`${url}?facts=true`, { headers: token })).json()) as { nodes: unknown[] };
      expect(withFacts.nodes[0]).toHaveProperty('facts');
      const bad = await fetch(`${url}?facts=maybe`, { headers: token });
      expect(bad.status).toBe(400);
      expect(await bad.text()).toMatch(/facts/);
    });

    it('a node token registers, sees and lists only its own node', async () => {
      const { admin, nodeClient } = await start();
      const web3 = await nodeClient('web-3');
      const lease = await web3.grantLease(30);
      await expect(
        web3.registerNode('web-4', { lease: lease.id, tags: [], attrs: {}, facts: {} }),
      ).rejects.toMatchObject({ code: 'forbidden' });
      // Nor with a lease it does not own.
      const adminLease = await admin.grantLease(30);
      await expect(
        web3.registerNode('web-3', { lease: adminLease.id, tags: [], attrs: {}, facts: {} }),
      ).rejects.toMatchObject({ code: 'forbidden' });
      await web3.registerNode('web-3', { lease: lease.id, tags: [], attrs: {}, facts: {} });
      const web4 = await nodeClient('web-4');
      const lease4 = await web4.grantLease(30);
      await web4.registerNode('web-4', { lease: lease4.id, tags: [], attrs: {}, facts: {} });
      expect((await web3.listNodes()).map((n) => n.name)).toEqual(['web-3']);
      await expect(web3.getNode('web-4')).rejects.toMatchObject({ code: 'node_not_found' });
      await expect(web3.removeNode('web-4')).rejects.toMatchObject({ code: 'forbidden' });
      expect(await admin.removeNode('web-4')).toBe(true);
      expect((await admin.listNodes()).map((n) => n.name)).toEqual(['web-3']);
    });

    it('bad input is a 400 naming the problem and registers nothing', async () => {
      const { admin } = await start();
      const lease = await admin.grantLease(30);
      await expect(admin.listNodes('role:web AND')).rejects.toMatchObject({ code: 'invalid_query' });
      await expect(
        admin.registerNode('web 1', { lease: lease.id, tags: [], attrs: {}, facts: {} }),
      ).rejects.toMatchObject({ code: 'invalid_request' });
      await expect(
        admin.registerNode('web-1', { lease: 'zz', tags: [], attrs: {}, facts: {} } as never),
      ).rejects.toMatchObject({ code: 'invalid_request' });
      await expect(
        admin.registerNode('web-1', { lease: 'ffffffff', tags: [], attrs: {}, facts: {} }),
      ).rejects.toMatchObject({ code: 'lease_not_found' });
      expect(await admin.listNodes()).toEqual([]);
      await eventually(async () => expect(await admin.listNodes()).toEqual([]));
    });
  });
}
