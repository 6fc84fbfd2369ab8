import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSnapshot } from '../../src/backends/sqlite/snapshot-format.js';
import { restoreSnapshot } from '../../src/backends/sqlite/snapshot-file.js';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import type { Backend } from '../../src/core/backend.js';
import { buildApp } from '../../src/server/build-app.js';
import type { TestApp } from './harness.js';
import { expectError, makeApp } from './harness.js';

const utf8 = (text: string) => new TextEncoder().encode(text);

describe('GET /v1/snapshot', () => {
  let t: TestApp | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await t?.close();
    t = undefined;
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('streams header, database and a SHA-256 trailer at the current revision; the bytes restore', async () => {
    t = await makeApp();
    await t.backend.put('/a', utf8('one'));
    await t.backend.put('/b', utf8('two'));
    const last = await t.backend.put('/a', utf8('three'));

    const res = await t.app.inject({ method: 'GET', url: '/v1/snapshot' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(Number(res.headers['x-muster-revision'])).toBe(last.revision);
    const bytes = res.rawPayload;
    expect(Number(res.headers['content-length'])).toBe(bytes.length);
    expect(bytes.toString('latin1', 0, 8)).toBe('MUSTSNAP');
    const body = bytes.subarray(0, bytes.length - 32);
    expect(
      createHash('sha256')
        .update(body)
        .digest()
        .equals(bytes.subarray(bytes.length - 32)),
    ).toBe(true);
    expect(decodeSnapshot(bytes).revision).toBe(last.revision);

    const dir = mkdtempSync(join(tmpdir(), 'muster-snap-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'snap'), bytes);
    expect(await restoreSnapshot({ file: join(dir, 'snap'), dataDir: join(dir, 'data') })).toBe(last.revision);
    const restored = SqliteBackend.open({ dataDir: join(dir, 'data') });
    try {
      expect(await restored.revision()).toBe(last.revision);
      const a = await restored.get('/a');
      expect(a && Buffer.from(a.value).toString()).toBe('three');
      expect(a).toMatchObject({ modRevision: last.revision, version: 2 });
    } finally {
      await restored.close();
    }
  });

  it('answers 501 snapshot_unsupported, naming etcdctl snapshot save, on a store without the capability', async () => {
    const real = SqliteBackend.open({ dataDir: ':memory:' });
    const etcdLike = new Proxy(real, {
      get(target, property, receiver) {
        if (property === 'snapshot') return undefined;
        if (property === 'kind') return 'etcd';
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as Backend;
    const app = await buildApp({ backend: etcdLike, auth: 'off' });
    try {
      const res = await app.inject({ method: 'GET', url: '/v1/snapshot' });
      expectError(res, 501, 'snapshot_unsupported', /etcdctl snapshot save/);
    } finally {
      await app.close();
      await real.close();
    }
  });
});
