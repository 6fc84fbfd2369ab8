import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthApp } from './auth-harness.js';
import type { AuthApp } from './auth-harness.js';

/** Enrolment tokens: each use makes one node token; a node token acts only as its node. */

let t: AuthApp;
beforeAll(async () => {
  t = await startAuthApp();
});
afterAll(async () => {
  await t.close();
});

async function as(token: string, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(t.url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined
        ? { 'content-type': typeof body === 'string' ? 'application/octet-stream' : 'application/json' }
        : {}),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
}

describe('enrolment', () => {
  it('an enrol token makes as many node tokens as its uses, each acting only as its own node', async () => {
    const enrol = (await t.tokens.create({ role: 'enrol', uses: 2 })).token;
    expect((await as(enrol, 'GET', '/v1/kv/?prefix=true')).status).toBe(403);
    expect((await as(enrol, 'PUT', '/v1/kv/nodes/web-1/x', 'v')).status).toBe(403);
    const one = (await (await as(enrol, 'POST', '/v1/enrol', { node: 'web-1' })).json()) as {
      token: string;
      info: { role: string; node: string };
    };
    expect(one.info).toMatchObject({ role: 'node', node: 'web-1' });
    expect((await as(one.token, 'PUT', '/v1/kv/nodes/web-1/state', 'up')).status).toBe(200);
    expect((await as(one.token, 'PUT', '/v1/kv/nodes/web-2/state', 'up')).status).toBe(403);
    expect((await as(enrol, 'POST', '/v1/enrol', { node: 'web-2' })).status).toBe(200);
    const spent = await as(enrol, 'POST', '/v1/enrol', { node: 'web-3' });
    expect(spent.status).toBe(401);
    expect((await as(enrol, 'POST', '/v1/enrol', { node: '../web-1' })).status).toBe(401);
  });

  it('concurrent enrolments never make more node tokens than the uses', async () => {
    const enrol = (await t.tokens.create({ role: 'enrol', uses: 3 })).token;
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => as(enrol, 'POST', '/v1/enrol', { node: `race-${i}` })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    const nodes = (await t.tokens.list()).filter((i) => i.node?.startsWith('race-'));
    expect(nodes).toHaveLength(3);
  });

  it('refuses a bad node name without spending a use; other roles may not enrol', async () => {
    const enrol = (await t.tokens.create({ role: 'enrol', uses: 1 })).token;
    expect((await as(enrol, 'POST', '/v1/enrol', { node: 'a/b' })).status).toBe(400);
    expect((await as(enrol, 'POST', '/v1/enrol', { node: 'ok-node' })).status).toBe(200);
    for (const role of ['operator', 'reader', 'node', 'cluster'] as const) {
      expect((await as(t.token[role] as string, 'POST', '/v1/enrol', { node: 'x' })).status).toBe(403);
    }
  });
});
