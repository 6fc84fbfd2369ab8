import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startAuthApp } from './auth-harness.js';
import type { AuthApp, Who } from './auth-harness.js';

/**
 * Cluster and node tokens stay inside their space through every way in: kv, txn,
 * watch, wait, the primitives and leases, with the usual path tricks. Each trick
 * is refused (400 for a path that cannot be a key, 403 for one outside), and
 * nothing is written. The operator's and reader's view never includes tokens.
 */

let t: AuthApp;
beforeAll(async () => {
  t = await startAuthApp();
  await t.backend.put('/clusters/other/join', Buffer.from('secret-of-other'));
  await t.backend.put('/nodes/web-4/state', Buffer.from('web-4'));
});
afterAll(async () => {
  await t.close();
});

async function status(who: Who, method: string, path: string, body?: unknown): Promise<number> {
  const res = await t.call(who, method, path, body);
  await res.arrayBuffer();
  return res.status;
}

/** A request whose path goes to the server exactly as written (fetch would resolve `..` first). */
function rawStatus(who: Who, method: string, path: string, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      t.url + '/',
      { method, path, headers: t.token[who] ? { authorization: `Bearer ${t.token[who]}` } : {} },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const refused = (s: number) => s === 400 || s === 403 || s === 404;

/**
 * Every key and its revisions but the audit log's: what a refused request must
 * not change. (The audit log records the requests that were carried out, in the
 * background, so the store's revision may move for it.)
 */
async function state(): Promise<string> {
  const all = await t.backend.range({ key: '/', prefix: true });
  return JSON.stringify(
    all.kvs
      .filter((kv) => !kv.key.startsWith('/muster/audit/'))
      .map((kv) => [kv.key, kv.modRevision, Buffer.from(kv.value).toString('base64')]),
  );
}

/** Paths that look as if they were inside `/clusters/k8s/` but are not (or are not keys at all). */
const CLUSTER_TRICKS = [
  '/clusters/k8s/../other/join',
  '/clusters/k8s/%2e%2e/other/join',
  '/clusters/k8s/%2E%2E/other/join',
  '/clusters/k8s/..%2fother/join',
  '/clusters/k8s//../other/join',
  '/clusters/k8s/./../other/join',
  '/clusters/k8s%2f..%2fother/join',
  '/clusters/k8s./join',
  '/clusters/k8s%00/join',
  '/clusters/k8\u0455/join', // Cyrillic ѕ
  '/clusters/k8s\uff0fx', // fullwidth solidus
  '/clusters/k8s',
  '/clusters/k8s-evil/join',
  '/clusters/other/join',
  '/muster/locks/other/waiters/x',
  '/muster/locks/k8s.m/../other/waiters/x',
];

describe('a cluster token (k8s)', () => {
  test('reads and writes its own space, and nothing else', async () => {
    expect(await status('cluster', 'PUT', '/v1/kv/clusters/k8s/join', Buffer.from('tok'))).toBe(200);
    expect(await status('cluster', 'GET', '/v1/kv/clusters/k8s/join')).toBe(200);
    expect(await status('cluster', 'GET', '/v1/kv/clusters/k8s/?prefix=true')).toBe(200);
    const before = await state();
    for (const trick of CLUSTER_TRICKS) {
      const path = trick
        .split('/')
        .map((s, i) => (i === 0 ? s : encodeURI(s).replace(/%25/g, '%')))
        .join('/');
      for (const [method, body] of [
        ['PUT', Buffer.from('x')],
        ['GET', undefined],
        ['DELETE', undefined],
      ] as const) {
        const s = await rawStatus('cluster', method, `/v1/kv${path}`, body);
        expect(refused(s), `${method} ${path} → ${s}`).toBe(true);
      }
      const r = await rawStatus('cluster', 'GET', `/v1/kv${path}?prefix=true`);
      expect(refused(r), `range ${path} → ${r}`).toBe(true);
      expect(refused(await rawStatus('cluster', 'GET', `/v1/wait${path}?exists=true&timeout=1s`))).toBe(true);
      const w = await rawStatus('cluster', 'GET', `/v1/watch${path}`);
      expect(refused(w), `watch ${path} → ${w}`).toBe(true);
    }
    expect(await state()).toBe(before);
    expect(new TextDecoder().decode((await t.backend.get('/clusters/other/join'))?.value)).toBe('secret-of-other');
  });

  test('txn: every compared, read, put and deleted key is checked, in both branches', async () => {
    const before = await state();
    const bodies = [
      { success: [{ type: 'put', key: '/clusters/other/join', value: 'x' }] },
      { failure: [{ type: 'put', key: '/clusters/other/join', value: 'x' }] },
      { success: [{ type: 'delete', key: '/clusters/', prefix: true }] },
      { success: [{ type: 'get', key: '/clusters/', prefix: true }] },
      { compare: [{ key: '/clusters/other/join', target: 'value', op: '=', value: 'secret-of-other' }] },
      { success: [{ type: 'put', key: '/clusters/k8s/../other/join', value: 'x' }] },
      {
        success: [
          { type: 'put', key: '/clusters/k8s/ok', value: 'x' },
          { type: 'put', key: '/muster/x', value: 'x' },
        ],
      },
    ];
    for (const body of bodies) expect(refused(await status('cluster', 'POST', '/v1/txn', body))).toBe(true);
    expect(await state()).toBe(before);
    expect(
      await status('cluster', 'POST', '/v1/txn', { success: [{ type: 'put', key: '/clusters/k8s/ok', value: 'x' }] }),
    ).toBe(200);
  });

  test('watch: only its own space', async () => {
    expect(await status('cluster', 'GET', '/v1/watch/clusters/')).toBe(403);
    expect(await status('cluster', 'GET', '/v1/watch/')).toBe(403);
    expect(await status('cluster', 'GET', '/v1/watch/clusters/k8s?prefix=true')).toBe(403);
    const stop = new AbortController();
    const res = await t.call('cluster', 'GET', '/v1/watch/clusters/k8s/', undefined, stop.signal);
    expect(res.status).toBe(200);
    stop.abort();
  });

  test('primitives: only those named k8s or k8s.<anything>', async () => {
    const lease = ((await (await t.call('cluster', 'POST', '/v1/leases', { ttl: 30 })).json()) as { id: string }).id;
    for (const name of ['k8sx', 'k8s-evil', 'other', 'k8', 'x.k8s']) {
      expect(await status('cluster', 'POST', `/v1/locks/${name}/acquire`, { lease })).toBe(403);
      expect(await status('cluster', 'POST', `/v1/elections/${name}/campaign`, { lease, value: 'v' })).toBe(403);
      expect(await status('cluster', 'GET', `/v1/locks/${name}`)).toBe(403);
    }
    expect(await status('cluster', 'POST', '/v1/locks/k8s/acquire', { lease })).toBe(200);
    expect(await status('cluster', 'POST', '/v1/elections/k8s.master/campaign', { lease, value: 'v' })).toBe(200);
  });
});

describe('a node token (web-3)', () => {
  test('writes only /nodes/web-3/', async () => {
    expect(await status('node', 'PUT', '/v1/kv/nodes/web-3/state', Buffer.from('up'))).toBe(200);
    const before = await state();
    for (const path of ['/nodes/web-4/state', '/nodes/web-3/../web-4/state', '/nodes/web-3x/state', '/nodes/state']) {
      const s = await rawStatus('node', 'PUT', `/v1/kv${path}`, Buffer.from('x'));
      expect(refused(s), `${path} → ${s}`).toBe(true);
    }
    expect(await state()).toBe(before);
    expect(await status('node', 'GET', '/v1/kv/nodes/web-4/state')).toBe(403);
  });
});

describe('leases and holds belong to the token that made them', () => {
  test("another token may not keep alive, revoke, bind keys to, or acquire with someone else's lease", async () => {
    const mine = ((await (await t.call('operator', 'POST', '/v1/leases', { ttl: 30 })).json()) as { id: string }).id;
    expect(await status('node', 'POST', `/v1/leases/${mine}/keepalive`)).toBe(403);
    expect(await status('node', 'DELETE', `/v1/leases/${mine}`)).toBe(403);
    expect(await status('node', 'PUT', `/v1/kv/nodes/web-3/x?lease=${mine}`, Buffer.from('x'))).toBe(403);
    expect(await status('cluster', 'POST', '/v1/locks/k8s.l/acquire', { lease: mine })).toBe(403);
    expect(await status('node', 'POST', '/v1/leases/ffffffff/keepalive')).toBe(404);
    expect(await status('operator', 'POST', `/v1/leases/${mine}/keepalive`)).toBe(200);
  });

  test('a lock is released only through its holder’s lease, not by one who read its key and token', async () => {
    const lease = ((await (await t.call('cluster', 'POST', '/v1/leases', { ttl: 30 })).json()) as { id: string }).id;
    const held = (await (await t.call('cluster', 'POST', '/v1/locks/k8s.rel/acquire', { lease })).json()) as {
      key: string;
      token: number;
    };
    const status1 = (await (await t.call('reader', 'GET', '/v1/locks/k8s.rel')).json()) as { holder: { key: string } };
    expect(status1.holder.key).toBe(held.key);
    const release = { key: held.key, token: held.token };
    expect(await status('operator', 'POST', '/v1/locks/k8s.rel/release', release)).toBe(403);
    expect(await status('node', 'POST', '/v1/locks/k8s.rel/release', release)).toBe(403);
    expect(
      ((await (await t.call('reader', 'GET', '/v1/locks/k8s.rel')).json()) as { holder: unknown }).holder,
    ).not.toBeNull();
    expect(await status('cluster', 'POST', '/v1/locks/k8s.rel/release', release)).toBe(200);
  });
});

describe('tokens are for admins only', () => {
  test('an operator or reader never sees token records, through get, range, txn or watch', async () => {
    const keys = (await t.backend.range({ key: '/muster/auth/tokens/', prefix: true })).kvs.map((kv) => kv.key);
    expect(keys.length).toBeGreaterThan(0);
    for (const who of ['operator', 'reader'] as const) {
      expect(await status(who, 'GET', `/v1/kv${keys[0]}`)).toBe(403);
      expect(await status(who, 'GET', '/v1/kv/muster/auth/?prefix=true')).toBe(403);
      const all = (await (await t.call(who, 'GET', '/v1/kv/?prefix=true')).json()) as {
        kvs: { key: string }[];
        count: number;
      };
      expect(all.kvs.filter((kv) => kv.key.startsWith('/muster/auth/'))).toEqual([]);
      expect(all.count).toBe(all.kvs.length);
      expect(await status(who, 'POST', '/v1/txn', { success: [{ type: 'get', key: '/muster/', prefix: true }] })).toBe(
        403,
      );
    }
    expect(await status('admin', 'GET', `/v1/kv${keys[0]}`)).toBe(200);
  });

  test('a watch of everything does not carry token events to an operator', async () => {
    const stop = new AbortController();
    const res = await t.call('operator', 'GET', '/v1/watch/?fromRevision=1', undefined, stop.signal);
    expect(res.status).toBe(200);
    await (await t.call('admin', 'POST', '/v1/tokens', { role: 'reader', description: 'during-watch' })).arrayBuffer();
    await t.backend.put('/app/after-token', Buffer.from('x'));
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('/app/after-token')) text += new TextDecoder().decode((await reader.read()).value);
    stop.abort();
    expect(text).not.toContain('/muster/auth/');
    expect(text).toContain('/app/after-token');
  });
});
