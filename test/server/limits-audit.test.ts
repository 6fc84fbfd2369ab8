import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { systemClock } from '../../src/core/clock.js';
import { AUDIT_PREFIX, AuditLog, pruneAudit } from '../../src/security/audit-log.js';
import type { AuditRecord } from '../../src/security/audit-log.js';
import type { NewToken } from '../../src/security/token-registry.js';
import { TokenRegistry } from '../../src/security/token-registry.js';
import { buildApp } from '../../src/server/build-app.js';
import type { LimitSettings } from '../../src/server/limits.js';

/** Per-token limits (429 limit_exceeded) and the audit log. */

interface Running {
  url: string;
  backend: SqliteBackend;
  token(spec: NewToken): Promise<string>;
  call(token: string | null, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response>;
  close(): Promise<void>;
}

const open: Running[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

async function start(limits: LimitSettings = {}): Promise<Running> {
  const backend = SqliteBackend.open({ dataDir: ':memory:' });
  const tokens = new TokenRegistry(backend, systemClock);
  await tokens.start();
  const app = await buildApp({ backend, auth: { tokens }, logger: false, limits });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const url = `http://127.0.0.1:${address.port}`;
  const running: Running = {
    url,
    backend,
    token: async (spec) => (await tokens.create(spec)).token,
    call: (token, method, path, body, signal) =>
      fetch(url + path, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      }),
    close: async () => {
      tokens.stop();
      await app.close();
      await backend.close();
    },
  };
  open.push(running);
  return running;
}

describe('per-token limits', () => {
  it('requests per second: a burst of twice the rate, then 429 limit_exceeded with Retry-After; other tokens unaffected', async () => {
    const t = await start({ requestsPerSecond: 5 });
    const busy = await t.token({ role: 'reader' });
    const other = await t.token({ role: 'reader' });
    const statuses: number[] = [];
    let refused: Response | null = null;
    for (let i = 0; i < 14; i++) {
      const res = await t.call(busy, 'GET', '/v1/kv/?prefix=true');
      statuses.push(res.status);
      if (res.status === 429) refused = res;
      else await res.arrayBuffer();
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    expect(refused?.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = (await refused?.json()) as { error: { code: string; limit: string; max: number } };
    expect(body.error).toMatchObject({ code: 'limit_exceeded', limit: 'requests per second', max: 5 });
    expect((await t.call(other, 'GET', '/v1/kv/?prefix=true')).status).toBe(200);
  });

  it('open watches: the third of a limit of two is refused until one closes', async () => {
    const t = await start({ watches: 2 });
    const reader = await t.token({ role: 'reader' });
    const streams = [new AbortController(), new AbortController()];
    for (const s of streams)
      expect((await t.call(reader, 'GET', '/v1/watch/a/', undefined, s.signal)).status).toBe(200);
    const third = await t.call(reader, 'GET', '/v1/watch/a/');
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { limit: string } }).error.limit).toBe('open watches');
    streams[0]?.abort();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const again = new AbortController();
      status = (await t.call(reader, 'GET', '/v1/watch/a/', undefined, again.signal)).status;
      again.abort();
    }
    expect(status).toBe(200);
    streams[1]?.abort();
  });

  it('blocked calls: a second wait over a limit of one is refused; after the first ends, one is taken again', async () => {
    const t = await start({ blocked: 1 });
    const operator = await t.token({ role: 'operator' });
    const first = t.call(operator, 'GET', '/v1/wait/flag?exists=true&timeout=5s');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await t.call(operator, 'GET', '/v1/wait/flag?exists=true&timeout=5s');
    expect(second.status).toBe(429);
    await t.call(operator, 'PUT', '/v1/kv/flag', 'up');
    expect((await first).status).toBe(200);
    expect((await t.call(operator, 'GET', '/v1/wait/flag?exists=true&timeout=5s')).status).toBe(200);
  });
});

describe('the audit log', () => {
  it('records writes and token changes with who, what and the result, refusals not; audit:read only', async () => {
    const t = await start();
    const admin = await t.token({ role: 'admin' });
    const operator = await t.token({ role: 'operator', description: 'ci' });
    const cluster = await t.token({ role: 'cluster', cluster: 'k8s' });
    const operatorId = operator.slice(4, 16);
    expect((await t.call(operator, 'PUT', '/v1/kv/app/x', 'v')).status).toBe(200);
    expect((await t.call(cluster, 'PUT', '/v1/kv/app/x', 'v')).status).toBe(403);
    expect((await t.call(null, 'DELETE', '/v1/kv/app/x')).status).toBe(401);
    const reader = (await (await t.call(admin, 'POST', '/v1/tokens', { role: 'reader' })).json()) as {
      info: { id: string };
    };
    const job = await t.call(operator, 'POST', '/v1/jobs', { query: 'role:web', command: 'chef-client' });
    expect(job.status).toBe(201);
    const jobId = ((await job.json()) as { id: string }).id;
    await t.call(operator, 'GET', '/v1/kv/app/x');

    const res = await t.call(admin, 'GET', '/v1/audit');
    expect(res.status).toBe(200);
    const records = ((await res.json()) as { records: AuditRecord[] }).records;
    const summary = records.map((r) => `${r.role} ${r.method} ${r.route} ${r.target} ${r.status}`);
    // What was carried out; the refusals (403, 401) leave no trace in the store.
    // A POST names what it created: the new token's id, the job's id.
    expect(summary).toEqual([
      'operator PUT /v1/kv/* /app/x 200',
      `admin POST /v1/tokens ${reader.info.id} 200`,
      `operator POST /v1/jobs ${jobId} 201`,
    ]);
    expect(records[0]?.tokenId).toBe(operatorId);
    expect(Date.parse(records[0]?.at ?? '')).toBeGreaterThan(Date.now() - 60_000);

    const mine = (
      (await (await t.call(admin, 'GET', `/v1/audit?token=${operatorId}`)).json()) as { records: AuditRecord[] }
    ).records;
    expect(mine.map((r) => r.method)).toEqual(['PUT', 'POST']);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect(
      ((await (await t.call(admin, 'GET', `/v1/audit?since=${future}`)).json()) as { records: unknown[] }).records,
    ).toEqual([]);

    expect((await t.call(operator, 'GET', '/v1/audit')).status).toBe(403);
    expect((await t.call(operator, 'GET', '/v1/kv/muster/audit/?prefix=true')).status).toBe(403);
    const all = (await (await t.call(operator, 'GET', '/v1/kv/?prefix=true')).json()) as { kvs: { key: string }[] };
    expect(all.kvs.filter((kv) => kv.key.startsWith(AUDIT_PREFIX))).toEqual([]);
  });

  it('prunes records older than the retention', async () => {
    const backend = SqliteBackend.open({ dataDir: ':memory:' });
    try {
      let now = Date.parse('2026-01-01T00:00:00Z');
      const clock = { ...systemClock, now: () => now };
      const log = new AuditLog(backend, clock);
      log.record({ tokenId: 'a', role: 'admin', method: 'PUT', route: '/v1/kv/*', target: '/old', status: 200 });
      await log.flush();
      now += 8 * 86_400_000;
      log.record({ tokenId: 'a', role: 'admin', method: 'PUT', route: '/v1/kv/*', target: '/new', status: 200 });
      await log.flush();
      expect(await pruneAudit(backend, now - 7 * 86_400_000)).toBe(1);
      expect((await log.query()).map((r) => r.target)).toEqual(['/new']);
    } finally {
      await backend.close();
    }
  });
});
