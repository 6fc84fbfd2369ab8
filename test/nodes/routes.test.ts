import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import { InvalidArgumentError, NodeNotFoundError } from '../../src/core/errors.js';
import { startAuthApp } from '../server/auth-harness.js';
import type { AuthApp } from '../server/auth-harness.js';

/** The node registry's routes under auth: the token of node web-3 is the auth harness's `node`. */
let t: AuthApp;
beforeAll(async () => {
  t = await startAuthApp();
});
afterAll(async () => {
  await t.close();
});

async function leaseOf(who: 'node' | 'admin' | 'operator'): Promise<string> {
  const res = await t.call(who, 'POST', '/v1/leases', { ttl: 60 });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
}

const body = (lease: string, over: Record<string, unknown> = {}) => ({
  lease,
  tags: ['web'],
  attrs: { role: 'web' },
  facts: { hostname: 'web-3' },
  ...over,
});

describe('node routes', () => {
  it('a node token registers only its own name, on its own lease', async () => {
    const own = await leaseOf('node');
    const admins = await leaseOf('admin');
    const ok = await t.call('node', 'PUT', '/v1/nodes/web-3', body(own));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ name: 'web-3', status: 'up', tags: ['web'], attrs: { role: 'web' } });
    const other = await t.call('node', 'PUT', '/v1/nodes/web-4', body(own));
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { message: string } }).error.message).toMatch(/registers only itself/);
    const stolen = await t.call('node', 'PUT', '/v1/nodes/web-3', body(admins));
    expect(stolen.status).toBe(403);
    expect(await t.call('reader', 'PUT', '/v1/nodes/web-3', body(own)).then((r) => r.status)).toBe(403);
    expect(await t.call('anonymous', 'PUT', '/v1/nodes/web-3', body(own)).then((r) => r.status)).toBe(401);
    // web-4 was never written.
    expect((await t.call('admin', 'GET', '/v1/nodes/web-4')).status).toBe(404);
  });

  it('reads: operators and readers list and show; a node token shows itself only', async () => {
    const lease = await leaseOf('operator');
    expect((await t.call('operator', 'PUT', '/v1/nodes/db-1', body(lease, { attrs: { role: 'db' } }))).status).toBe(
      200,
    );
    const listed = await t.call('reader', 'GET', '/v1/nodes?query=' + encodeURIComponent('role:db OR name:web-*'));
    expect(listed.status).toBe(200);
    const { nodes } = (await listed.json()) as { nodes: { name: string }[] };
    expect(nodes.map((n) => n.name)).toEqual(['db-1', 'web-3']);
    expect((await t.call('node', 'GET', '/v1/nodes/web-3')).status).toBe(200);
    expect((await t.call('node', 'GET', '/v1/nodes/db-1')).status).toBe(403);
    expect((await t.call('node', 'GET', '/v1/nodes')).status).toBe(403);
    expect((await t.call('cluster', 'GET', '/v1/nodes')).status).toBe(403);
  });

  it('a bad query is a 400 naming the position; bad bodies and names are 400s that write nothing', async () => {
    const bad = await t.call('admin', 'GET', '/v1/nodes?query=' + encodeURIComponent('role:web AND (env:prod'));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'invalid_query', position: 23 } });
    expect((await t.call('admin', 'GET', '/v1/nodes?bogus=1')).status).toBe(400);
    const lease = await leaseOf('admin');
    const cases: [string, unknown][] = [
      ['/v1/nodes/ok', { ...body(lease), extra: 1 }],
      ['/v1/nodes/ok', { tags: [], attrs: {}, facts: {} }],
      ['/v1/nodes/ok', body('zz')],
      ['/v1/nodes/ok', body(lease, { tags: ['a b'] })],
      ['/v1/nodes/ok', body(lease, { attrs: { status: 'x' } })],
      ['/v1/nodes/a%20b', body(lease)],
      ['/v1/nodes/-x', body(lease)],
      ['/v1/nodes/ok', '{"lease":'],
    ];
    for (const [path, payload] of cases) {
      const res = await t.call('admin', 'PUT', path, payload);
      expect(res.status, `${path} ${JSON.stringify(payload)}`).toBe(400);
    }
    const gone = await t.call('admin', 'PUT', '/v1/nodes/ok', body('7ffffffff'));
    expect(gone.status).toBe(404);
    // (The audit log writes on its own schedule: look at the registry's keys, not the revision.)
    expect((await t.backend.range({ key: '/muster/nodes', prefix: true })).kvs.map((kv) => kv.key)).not.toContain(
      '/muster/nodes/ok',
    );
    expect((await t.call('admin', 'GET', '/v1/nodes/ok')).status).toBe(404);
  });

  it('removal takes an operator; the client speaks every route', async () => {
    const admin = new MusterClient({ endpoints: [t.url], token: t.token.admin! });
    const node = new MusterClient({ endpoints: [t.url], token: t.token.node! });
    const grant = await node.grantLease(30);
    const registered = await node.registerNode('web-3', { lease: grant.id, tags: ['x'], attrs: {}, facts: {} });
    expect(registered.tags).toEqual(['x']);
    expect((await admin.getNode('web-3')).status).toBe('up');
    expect((await admin.listNodes('tag:x')).map((n) => n.name)).toEqual(['web-3']);
    await expect(admin.listNodes('tag:')).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await t.call('node', 'DELETE', '/v1/nodes/web-3')).status).toBe(403);
    expect((await t.call('reader', 'DELETE', '/v1/nodes/web-3')).status).toBe(403);
    await admin.removeNode('web-3');
    await expect(admin.getNode('web-3')).rejects.toBeInstanceOf(NodeNotFoundError);
    await expect(admin.removeNode('web-3')).rejects.toBeInstanceOf(NodeNotFoundError);
    await node.revokeLease(grant.id);
  });
});
