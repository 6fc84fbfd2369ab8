import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  InvalidKeyError,
  KeyNotFoundError,
  LeaseNotFoundError,
  RevisionConflictError,
  ValueTooLargeError,
} from '../../src/core/errors.js';
import type { TestServer } from './test-server.js';
import { startTestServer } from './test-server.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

describe('MusterClient against a real server', () => {
  let server: TestServer;
  let client: MusterClient;

  beforeAll(async () => {
    server = await startTestServer({ maxValueBytes: 4096 });
    client = new MusterClient({ endpoints: server.url });
  });
  afterAll(async () => {
    await server.close();
  });

  it('puts and gets text and binary values with their metadata', async () => {
    const put = await client.put('/kv/text', 'héllo');
    expect(put).toMatchObject({ key: '/kv/text', version: 1, createRevision: put.revision, modRevision: put.revision });
    expect(await client.getText('/kv/text')).toBe('héllo');

    const binary = new Uint8Array([0, 255, 1, 254, 0x80]);
    const second = await client.put('/kv/binary', binary);
    const got = await client.get('/kv/binary');
    expect([...got.value]).toEqual([...binary]);
    expect(got).toMatchObject({ key: '/kv/binary', version: 1, modRevision: second.revision, lease: null });
    expect(got.revision).toBeGreaterThanOrEqual(second.revision);

    const again = await client.put('/kv/text', 'again');
    expect(again.version).toBe(2);
    expect(again.createRevision).toBe(put.revision);
  });

  it('keeps keys with spaces, ? and # intact in the URL', async () => {
    await client.put('/kv/odd name?x=1#frag', 'odd');
    expect(await client.getText('/kv/odd name?x=1#frag')).toBe('odd');
    const listed = await client.list('/kv/odd');
    expect(listed.kvs.map((kv) => kv.key)).toEqual(['/kv/odd name?x=1#frag']);
  });

  it('throws KeyNotFoundError for a missing key', async () => {
    const error = await client.get('/kv/missing').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyNotFoundError);
    expect((error as KeyNotFoundError).key).toBe('/kv/missing');
  });

  it('rejects a stale prevRevision with RevisionConflictError carrying the current revision', async () => {
    const first = await client.put('/cas/a', '1');
    const second = await client.put('/cas/a', '2', { prevRevision: first.modRevision });
    const error = await client.put('/cas/a', '3', { prevRevision: first.modRevision }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionConflictError);
    expect(error).toMatchObject({
      key: '/cas/a',
      currentModRevision: second.modRevision,
      expectedModRevision: first.modRevision,
    });
    expect(await client.getText('/cas/a')).toBe('2');

    const create = await client.put('/cas/a', 'x', { prevRevision: 0 }).catch((e: unknown) => e);
    expect(create).toBeInstanceOf(RevisionConflictError);
    const created = await client.put('/cas/new', 'x', { prevRevision: 0 });
    expect(created.version).toBe(1);
  });

  it('lists a prefix with limit, count, more, keysOnly and a past revision', async () => {
    const r1 = await client.put('/list/a', 'A');
    await client.put('/list/b', 'B');
    await client.put('/list/c', 'C');
    await client.put('/listx', 'not in the folder');

    const all = await client.list('/list/');
    expect(all.kvs.map((kv) => [kv.key, text(kv.value)])).toEqual([
      ['/list/a', 'A'],
      ['/list/b', 'B'],
      ['/list/c', 'C'],
    ]);
    expect(all.more).toBe(false);

    const limited = await client.list('/list/', { limit: 2 });
    expect(limited.kvs.map((kv) => kv.key)).toEqual(['/list/a', '/list/b']);
    expect(limited).toMatchObject({ more: true, count: 3 });

    const keysOnly = await client.list('/list/', { keysOnly: true });
    expect(keysOnly.kvs.every((kv) => kv.value.length === 0)).toBe(true);

    const past = await client.list('/list/', { revision: r1.revision });
    expect(past.kvs.map((kv) => kv.key)).toEqual(['/list/a']);
  });

  it('deletes a key, a prefix, and refuses a stale prevRevision', async () => {
    const a = await client.put('/del/a', '1');
    await client.put('/del/b', '2');
    await client.put('/del/c/d', '3');
    await client.put('/del/a', '1b');

    const conflict = await client.delete('/del/a', { prevRevision: a.modRevision }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(RevisionConflictError);

    expect((await client.delete('/del/a')).deleted).toBe(1);
    expect((await client.delete('/del/a')).deleted).toBe(0);
    expect((await client.delete('/del/', { prefix: true })).deleted).toBe(2);
    expect((await client.list('/del/')).kvs).toEqual([]);
  });

  it('runs a transaction with text and binary values, both branches', async () => {
    const base = await client.put('/txn/counter', '1');
    const ok = await client.txn({
      compare: [{ key: '/txn/counter', target: 'modRevision', op: '=', value: base.modRevision }],
      success: [
        { type: 'put', key: '/txn/counter', value: '2' },
        { type: 'put', key: '/txn/blob', value: new Uint8Array([0xff, 0x00]) },
        { type: 'get', key: '/txn/', prefix: true },
      ],
      failure: [],
    });
    expect(ok.succeeded).toBe(true);
    expect(ok.results.map((r) => r.type)).toEqual(['put', 'put', 'get']);
    const read = ok.results[2];
    expect(read?.type).toBe('get');
    if (read?.type === 'get') {
      expect(read.kvs.map((kv) => kv.key)).toEqual(['/txn/blob', '/txn/counter']);
      expect([...(read.kvs[0]?.value ?? [])]).toEqual([0xff, 0x00]);
    }
    expect([...(await client.get('/txn/blob')).value]).toEqual([0xff, 0x00]);

    const failed = await client.txn({
      compare: [{ key: '/txn/counter', target: 'value', op: '=', value: '1' }],
      success: [{ type: 'delete', key: '/txn/counter' }],
      failure: [{ type: 'get', key: '/txn/counter' }],
    });
    expect(failed.succeeded).toBe(false);
    const current = failed.results[0];
    if (current?.type !== 'get') throw new Error('expected a get result');
    expect(text(current.kvs[0]?.value ?? new Uint8Array())).toBe('2');
  });

  it('grants, shows, lists, keeps alive and revokes leases; revoking deletes the keys', async () => {
    const lease = await client.grantLease(30);
    expect(lease.id).toMatch(/^[0-9a-f]+$/);
    expect(lease.ttl).toBe(30);
    await client.put('/lease/node-a', 'up', { lease: lease.id });
    expect((await client.get('/lease/node-a')).lease).toBe(lease.id);

    const info = await client.leaseInfo(lease.id);
    expect(info).toMatchObject({ id: lease.id, grantedTtl: 30, keys: ['/lease/node-a'] });
    expect(await client.listLeases()).toContain(lease.id);
    expect(await client.keepAlive(lease.id)).toMatchObject({ id: lease.id, ttl: 30 });

    await client.revokeLease(lease.id);
    await expect(client.get('/lease/node-a')).rejects.toBeInstanceOf(KeyNotFoundError);
    await expect(client.keepAlive(lease.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(client.leaseInfo(lease.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(client.revokeLease(lease.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
    expect(await client.listLeases()).not.toContain(lease.id);
  });

  it('maps the server’s 4xx bodies to typed errors', async () => {
    const tooLarge = await client.put('/big', new Uint8Array(5000)).catch((e: unknown) => e);
    expect(tooLarge).toBeInstanceOf(ValueTooLargeError);
    const unknownLease = await client.put('/x', 'y', { lease: 'abc123' }).catch((e: unknown) => e);
    expect(unknownLease).toBeInstanceOf(LeaseNotFoundError);
    const badTxn = await client
      .txnWire({ compare: [{ key: 'no-slash', target: 'version', op: '=', value: 1 }] })
      .catch((e: unknown) => e);
    expect(badTxn).toBeInstanceOf(InvalidArgumentError);
    expect((badTxn as InvalidArgumentError).code).toMatch(/^invalid_/);
  });

  it('checks keys before sending them', async () => {
    await expect(client.put('/a/../b', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(client.get('relative')).rejects.toBeInstanceOf(InvalidKeyError);
    expect(() => client.watch('/a//b')).toThrow(InvalidKeyError);
  });

  it('long-polls a key: changed, deleted, timeout', async () => {
    const start = await client.put('/poll/k', 'v1');
    const timedOut = await client.waitForChange('/poll/k', start.modRevision, 200);
    expect(timedOut).toEqual({ type: 'timeout' });

    const waiting = client.waitForChange('/poll/k', start.modRevision, 10_000);
    await client.put('/poll/k', 'v2');
    const changed = await waiting;
    expect(changed.type).toBe('changed');
    if (changed.type === 'changed') expect(text(changed.kv.value)).toBe('v2');

    const now = (await client.get('/poll/k')).modRevision;
    const waitingForDelete = client.waitForChange('/poll/k', now, 10_000);
    await client.delete('/poll/k');
    expect(await waitingForDelete).toEqual({ type: 'deleted' });
  });

  it('answers health', async () => {
    const health = await client.health();
    expect(health.status).toBe(200);
    expect(health.endpoint).toBe(server.url);
  });
});

describe('MusterClient with several endpoints', () => {
  let server: TestServer;
  let deadUrl: string;
  let unavailable: ReturnType<typeof createServer>;
  let unavailableUrl: string;
  let unavailableHits = 0;

  beforeAll(async () => {
    server = await startTestServer();
    // A port with nothing listening: take one, then free it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    deadUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    // A server that answers every request with 503, as one cut off from its store would.
    unavailable = createServer((_req, res) => {
      unavailableHits++;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'unavailable', message: 'the store cannot be reached' } }));
    });
    await new Promise<void>((resolve) => unavailable.listen(0, '127.0.0.1', resolve));
    unavailableUrl = `http://127.0.0.1:${(unavailable.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await server.close();
    await new Promise<void>((resolve) => unavailable.close(() => resolve()));
  });

  it('accepts a comma-separated list', () => {
    const client = new MusterClient({ endpoints: ` ${deadUrl} ,127.0.0.1:4100/` });
    expect(client.endpoints).toEqual([deadUrl, 'http://127.0.0.1:4100']);
  });

  it('moves past a refused connection, even for a write (it never reached a server)', async () => {
    const client = new MusterClient({ endpoints: [deadUrl, server.url] });
    await client.put('/failover/a', '1');
    expect(client.currentEndpoint).toBe(server.url);
    expect(await client.getText('/failover/a')).toBe('1');
  });

  it('retries a read on the next endpoint after a 503, but not a write', async () => {
    const client = new MusterClient({ endpoints: server.url });
    await client.put('/failover/b', 'served');
    const reader = new MusterClient({ endpoints: [unavailableUrl, server.url] });
    const hitsBefore = unavailableHits;
    expect(await reader.getText('/failover/b')).toBe('served');
    expect(unavailableHits).toBe(hitsBefore + 1);

    const writer = new MusterClient({ endpoints: [unavailableUrl, server.url] });
    const error = await writer.put('/failover/c', 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    await expect(client.get('/failover/c')).rejects.toBeInstanceOf(KeyNotFoundError);
    // The next request goes to the endpoint that works.
    expect(writer.currentEndpoint).toBe(server.url);
    await writer.put('/failover/c', 'x');
  });

  it('throws BackendUnavailableError when no endpoint answers', async () => {
    const client = new MusterClient({ endpoints: [deadUrl] });
    const error = await client.get('/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toContain('connection refused');
  });
});
