import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectRestoredWrites } from '../support/restored-writes.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { MusterClient } from '../../src/client/muster-client.js';
import type { ServerProcess } from './cli-harness.js';
import { assertBuilt, muster, startServerProcess, TEST_ADMIN_TOKEN } from './cli-harness.js';

interface Acked {
  readonly key: string;
  readonly value: string;
  readonly revision: number;
}

describe('muster snapshot save / restore', () => {
  let root: string;
  let server: ServerProcess;
  const env = () => ({ env: { MUSTER_ENDPOINT: server.url } });

  beforeAll(async () => {
    assertBuilt();
    root = mkdtempSync(join(tmpdir(), 'muster-snapshot-'));
    server = await startServerProcess(['--data-dir', join(root, 'live')]);
  });
  afterAll(async () => {
    if (server) await server.cli.stop('SIGTERM');
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('saves during writes from several clients; the restore holds every acked key up to its revision, none after', async () => {
    const acked: Acked[] = [];
    let writing = true;
    const writers = [0, 1, 2, 3].map(async (w) => {
      const client = new MusterClient({ endpoints: server.url, token: TEST_ADMIN_TOKEN });
      for (let n = 0; writing || n < 20; n++) {
        // A key written once, and one key rewritten by this writer (its version grows).
        const once = await client.put(`/w${w}/k${n}`, `v${n}`);
        acked.push({ key: `/w${w}/k${n}`, value: `v${n}`, revision: once.revision });
        const again = await client.put(`/w${w}/counter`, String(n));
        acked.push({ key: `/w${w}/counter`, value: String(n), revision: again.revision });
      }
    });
    const file = join(root, 'during.snap');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const save = await muster(['snapshot', 'save', file], env());
    writing = false;
    await Promise.all(writers);
    expect(save.code).toBe(0);
    const revision = Number(/revision (\d+)/.exec(save.stderr)?.[1]);
    expect(revision).toBeGreaterThan(0);
    expect(existsSync(`${file}.partial`)).toBe(false);
    expect(Math.max(...acked.map((a) => a.revision))).toBeGreaterThan(revision);

    const target = join(root, 'restored');
    const restore = await muster(['snapshot', 'restore', file, '--data-dir', target]);
    expect(restore).toMatchObject({ code: 0, stdout: `restored revision ${revision} into ${target}\n` });

    const backend = SqliteBackend.open({ dataDir: target });
    try {
      expect(await backend.revision()).toBe(revision);
      await expectRestoredWrites(backend, '/w', acked, revision);
    } finally {
      await backend.close();
    }
  });

  it('refuses a corrupt or truncated file, and a non-empty folder without --force, touching nothing', async () => {
    const file = join(root, 'good.snap');
    expect((await muster(['put', '/x', 'y'], env())).code).toBe(0);
    expect((await muster(['snapshot', 'save', file], env())).code).toBe(0);
    const good = readFileSync(file);

    const flipped = Buffer.from(good);
    const middle = Math.floor(flipped.length / 2);
    flipped[middle] = (flipped[middle] ?? 0) ^ 0xff;
    writeFileSync(join(root, 'corrupt.snap'), flipped);
    const corrupt = await muster(['snapshot', 'restore', join(root, 'corrupt.snap'), '--data-dir', join(root, 'c')]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toMatch(/corrupt: its SHA-256 checksum does not match/);
    expect(existsSync(join(root, 'c'))).toBe(false);

    writeFileSync(join(root, 'short.snap'), good.subarray(0, good.length - 100));
    const short = await muster(['snapshot', 'restore', join(root, 'short.snap'), '--data-dir', join(root, 't')]);
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/truncated/);
    expect(existsSync(join(root, 't'))).toBe(false);

    const busy = join(root, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'keep me');
    const refused = await muster(['snapshot', 'restore', file, '--data-dir', busy]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not empty.*--force/);
    expect(readdirSync(busy)).toEqual(['notes.txt']);
  });

  it('exits 2 with the etcdctl advice when the server answers snapshot_unsupported', async () => {
    const etcdLike = createServer((_req, res) => {
      res.writeHead(501, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            code: 'snapshot_unsupported',
            message: 'the etcd store has no muster snapshot; back it up with `etcdctl snapshot save FILE`',
          },
        }),
      );
    });
    await new Promise<void>((resolve) => etcdLike.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(etcdLike.address() as AddressInfo).port}`;
      const file = join(root, 'etcd.snap');
      const result = await muster(['snapshot', 'save', file], { env: { MUSTER_ENDPOINT: url } });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('etcdctl snapshot save');
      expect(existsSync(file) || existsSync(`${file}.partial`)).toBe(false);
    } finally {
      await new Promise((resolve) => etcdLike.close(resolve));
    }
  });
});
