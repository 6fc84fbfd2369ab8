import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliOptions, ServerProcess } from './cli-harness.js';
import { assertBuilt, muster as runMuster, spawnMuster, startServerProcess } from './cli-harness.js';

describe('the muster binary against a real muster server', () => {
  let dataRoot: string;
  let server: ServerProcess;
  const muster = (args: readonly string[], options: CliOptions = {}) =>
    runMuster(args, { ...options, env: { MUSTER_ENDPOINT: server.url, ...options.env } });

  beforeAll(async () => {
    assertBuilt();
    dataRoot = mkdtempSync(join(tmpdir(), 'muster-cli-'));
    server = await startServerProcess(['--data-dir', join(dataRoot, 'data')]);
  });
  afterAll(async () => {
    if (server) await server.cli.stop('SIGTERM');
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  });

  it('prints the URL and a worked example on start, and answers /healthz', async () => {
    expect(server.cli.stdout).toContain(`muster listening on ${server.url}`);
    expect(server.cli.stdout).toMatch(/muster .*put \/config\/db\/host/);
    // The harness gives the server its admin token: the example names it as $TOKEN.
    expect(server.cli.stdout).toContain(`curl -H "Authorization: Bearer $TOKEN" ${server.url}/v1/kv/config/db/host`);
    await server.cli.waitFor(/admin token: the one provided at start/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('puts, gets, and refuses a stale --prev-revision with exit 1 and a plain message', async () => {
    const put = await muster(['put', '/config/db/host', '10.0.0.5']);
    expect(put).toMatchObject({ code: 0, stderr: '' });
    const revision = Number(/modRevision (\d+)/.exec(put.stdout)?.[1]);
    expect(revision).toBeGreaterThan(0);

    expect(await muster(['get', '/config/db/host'])).toMatchObject({ code: 0, stdout: '10.0.0.5\n' });

    const update = await muster(['put', '/config/db/host', '10.0.0.6', '--prev-revision', String(revision), '--json']);
    expect(update.code).toBe(0);
    const current = (JSON.parse(update.stdout) as { modRevision: number }).modRevision;

    const stale = await muster(['put', '/config/db/host', '10.0.0.7', '--prev-revision', String(revision)]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain(`conflict: /config/db/host is at revision ${current}, not ${revision}`);
    expect((await muster(['get', '/config/db/host'])).stdout).toBe('10.0.0.6\n');

    const json = await muster(['get', '/config/db/host', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      key: '/config/db/host',
      value: '10.0.0.6',
      modRevision: current,
      version: 2,
    });
  });

  it('reads the value from stdin when none is given, bytes intact', async () => {
    expect((await muster(['put', '/stdin/text'], { input: 'line one\nline two\n' })).code).toBe(0);
    expect((await muster(['get', '/stdin/text'])).stdout).toBe('line one\nline two\n');

    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    expect((await muster(['put', '/stdin/binary'], { input: binary })).code).toBe(0);
    const got = JSON.parse((await muster(['get', '/stdin/binary', '--json'])).stdout) as {
      value: string;
      encoding: string;
    };
    expect(got.encoding).toBe('base64');
    expect(Buffer.from(got.value, 'base64')).toEqual(binary);
  });

  it('lists a prefix as a table, as JSON, with --limit and --revision', async () => {
    const first = await muster(['put', '/ls/a', 'alpha', '--json']);
    const firstRevision = (JSON.parse(first.stdout) as { revision: number }).revision;
    await muster(['put', '/ls/b', 'x'.repeat(100)]);
    await muster(['put', '/ls/c', 'gamma']);

    const table = await muster(['ls', '/ls/']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^KEY\s+VALUE\s+MOD-REV\s+VERSION\s+LEASE$/);
    expect(lines[1]).toMatch(new RegExp(`^/ls/a\\s+alpha\\s+${firstRevision}\\s+1\\s+-$`));
    expect(lines[2]).toContain('…');
    expect(lines[2]?.length).toBeLessThan(100);
    expect(lines).toHaveLength(4);

    const json = JSON.parse((await muster(['ls', '/ls/', '--json', '--limit', '2'])).stdout) as {
      kvs: { key: string }[];
      more: boolean;
    };
    expect(json.kvs.map((kv) => kv.key)).toEqual(['/ls/a', '/ls/b']);
    expect(json.more).toBe(true);

    const past = await muster(['ls', '/ls/', '--revision', String(firstRevision)]);
    expect(past.stdout.trimEnd().split('\n')).toHaveLength(2);
  });

  it('watches: replays history from a revision, follows live, stops on Ctrl-C', async () => {
    const first = JSON.parse((await muster(['put', '/watch/a', '1', '--json'])).stdout) as { revision: number };
    await muster(['del', '/watch/a']);
    const watch = spawnMuster(['watch', '/watch/', '--from-revision', String(first.revision)], {
      env: { MUSTER_ENDPOINT: server.url },
    });
    await watch.waitFor(/DELETE \/watch\/a/);
    await muster(['put', '/watch/b', 'live']);
    await watch.waitFor(/PUT\s+\/watch\/b = live/);
    const ended = await watch.stop('SIGINT');
    expect(ended.code).toBe(0);
    const lines = ended.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^PUT\\s+/watch/a = 1 \\(revision ${first.revision}, version 1\\)$`));

    const jsonWatch = spawnMuster(['watch', '/watch/', '--from-revision', String(first.revision), '--json'], {
      env: { MUSTER_ENDPOINT: server.url },
    });
    await jsonWatch.waitFor(/"key":"\/watch\/b"/);
    const events = (await jsonWatch.stop('SIGTERM')).stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; key: string; revision: number });
    expect(events.map((e) => `${e.type} ${e.key}`)).toEqual(['put /watch/a', 'delete /watch/a', 'put /watch/b']);
    expect(events[0]?.revision).toBe(first.revision);
  });

  it('deletes a key and a prefix; a missing key is exit 1', async () => {
    await muster(['put', '/del/a', '1']);
    await muster(['put', '/del/b/c', '2']);
    expect(await muster(['del', '/del/a'])).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('deleted 1 key'),
    });
    const missing = await muster(['del', '/del/a']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not found: /del/a');
    const prefix = await muster(['del', '/del/', '--prefix', '--json']);
    expect(JSON.parse(prefix.stdout)).toMatchObject({ deleted: 1 });
    expect((await muster(['ls', '/del/', '--json'])).stdout).toContain('"kvs":[]');
  });

  it('runs a txn from stdin and from a file; a failed compare is exit 1', async () => {
    const put = JSON.parse((await muster(['put', '/txn/k', 'v1', '--json'])).stdout) as { modRevision: number };
    const body = (revision: number) =>
      JSON.stringify({
        compare: [{ key: '/txn/k', target: 'modRevision', op: '=', value: revision }],
        success: [{ type: 'put', key: '/txn/k', value: 'v2' }],
        failure: [{ type: 'get', key: '/txn/k' }],
      });
    const ok = await muster(['txn'], { input: body(put.modRevision) });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^SUCCEEDED at revision \d+/);

    const file = join(dataRoot, 'txn.json');
    writeFileSync(file, body(put.modRevision));
    const failed = await muster(['txn', file, '--json']);
    expect(failed.code).toBe(1);
    const result = JSON.parse(failed.stdout) as { succeeded: boolean; results: { kvs: { value: string }[] }[] };
    expect(result.succeeded).toBe(false);
    expect(result.results[0]?.kvs[0]?.value).toBe('v2');

    const broken = await muster(['txn'], { input: '{"compare": [' });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('not valid JSON');
    const rejected = await muster(['txn'], {
      input: '{"success": [{"type": "put", "key": "no-slash", "value": "x"}]}',
    });
    expect(rejected.code).toBe(2);
    expect(rejected.stderr).toMatch(/invalid input: .*no-slash/);
  });

  it('grants, uses, shows, lists, keeps alive and revokes a lease', async () => {
    const grant = await muster(['lease', 'grant', '15s']);
    expect(grant.code).toBe(0);
    const id = grant.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]+$/);

    expect((await muster(['put', '/nodes/a', 'up', '--lease', id])).code).toBe(0);
    const show = await muster(['lease', 'show', id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^lease ${id}: \\d+s left of 15s\\n  /nodes/a\\n$`));
    expect(JSON.parse((await muster(['lease', 'show', id, '--json'])).stdout)).toMatchObject({
      id,
      grantedTtl: 15,
      keys: ['/nodes/a'],
    });
    expect((await muster(['lease', 'ls'])).stdout.split('\n')).toContain(id);
    expect(JSON.parse((await muster(['lease', 'ls', '--json'])).stdout)).toEqual({
      leases: expect.arrayContaining([id]),
    });
    expect(await muster(['lease', 'keepalive', id, '--once'])).toMatchObject({
      code: 0,
      stdout: `lease ${id} renewed for 15s\n`,
    });

    expect((await muster(['lease', 'revoke', id])).code).toBe(0);
    expect((await muster(['get', '/nodes/a'])).code).toBe(1);
    const gone = await muster(['lease', 'show', id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`lease not found: ${id}`);
  });

  it('lease keepalive runs quietly until interrupted, and exits 1 when the lease is lost', async () => {
    const id = (await muster(['lease', 'grant', '5s'])).stdout.trim();
    const keepalive = spawnMuster(['lease', 'keepalive', id], { env: { MUSTER_ENDPOINT: server.url } });
    // Past the TTL, the lease is still there because of the keepalives.
    await new Promise((resolve) => setTimeout(resolve, 6500));
    expect((await muster(['lease', 'show', id])).code).toBe(0);
    expect(keepalive.stdout).toBe('');
    expect(await keepalive.stop('SIGINT')).toMatchObject({ code: 0, stdout: '', stderr: '' });

    const lost = spawnMuster(['lease', 'keepalive', id], { env: { MUSTER_ENDPOINT: server.url } });
    await muster(['lease', 'revoke', id]);
    const result = await lost.exited;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`lease not found: ${id}`);
  }, 40_000);

  it('exits 2 on usage errors, with a message naming the problem', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['get'], /missing required argument 'key'/],
      [['get', 'config/db'], /must start with "\/"/],
      [['put', '/a/../b', 'x'], /"\.\." segment/],
      [['put', '/a', 'x', '--prev-revision', 'three'], /whole number/],
      [['ls', '/x', '--limit', '-1'], /.+/],
      [['lease', 'grant', 'soon'], /invalid TTL "soon"/],
      [['lease', 'show', 'not-hex'], /hexadecimal/],
      [['get', '/a', '--bogus'], /unknown option '--bogus'/],
      [['del', '/folder/'], /add --prefix/],
    ];
    for (const [args, message] of cases) {
      const result = await muster(args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
    }
  });

  it('exits 4 when the server cannot be reached', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const dead = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    for (const args of [
      ['get', '/a'],
      ['put', '/a', 'b'],
      ['watch', '/a/'],
      ['lease', 'ls'],
    ]) {
      const result = await runMuster([...args, '--endpoint', dead]);
      expect({ args, code: result.code }).toEqual({ args, code: 4 });
      expect(result.stderr).toContain(`unavailable: cannot reach the muster server at ${dead}`);
    }
    // With a second endpoint that works, the first one's failure is skipped.
    expect((await runMuster(['lease', 'ls', '--endpoint', `${dead},${server.url}`])).code).toBe(0);
  });

  it('documents exit codes and shows an example in every --help', async () => {
    const main = await muster(['--help']);
    expect(main.code).toBe(0);
    expect(main.stdout).toMatch(
      /Exit codes:[\s\S]*0 +success[\s\S]*1 +the operation failed[\s\S]*2 +usage error[\s\S]*4 +server unreachable/,
    );
    const commands = [
      ['server'],
      ['get'],
      ['put'],
      ['del'],
      ['ls'],
      ['watch'],
      ['txn'],
      ['lease'],
      ['lease', 'grant'],
      ['lease', 'keepalive'],
      ['lease', 'revoke'],
      ['lease', 'show'],
      ['lease', 'ls'],
    ];
    for (const command of commands) {
      const help = await muster([...command, '--help']);
      expect({ command, code: help.code }).toEqual({ command, code: 0 });
      expect(help.stdout).toMatch(/Examples?:\n {2}\$ .*muster /);
    }
  });
});

describe('muster server', () => {
  let dataRoot: string;
  beforeAll(() => {
    assertBuilt();
    dataRoot = mkdtempSync(join(tmpdir(), 'muster-server-'));
  });
  afterAll(() => {
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  });

  it('stops gracefully on SIGTERM and keeps every acknowledged write on restart', async () => {
    const dataDir = join(dataRoot, 'restart');
    const first = await startServerProcess(['--data-dir', dataDir]);
    const env = { MUSTER_ENDPOINT: first.url };
    const writes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => runMuster(['put', `/keep/${i}`, `v${i}`, '--json'], { env })),
    );
    expect(writes.every((w) => w.code === 0)).toBe(true);
    const stopped = await first.cli.stop('SIGTERM');
    expect(stopped.code).toBe(0);

    const second = await startServerProcess(['--data-dir', dataDir]);
    try {
      const listed = JSON.parse(
        (await runMuster(['ls', '/keep/', '--json'], { env: { MUSTER_ENDPOINT: second.url } })).stdout,
      ) as {
        kvs: { key: string; value: string; modRevision: number }[];
      };
      expect(listed.kvs).toHaveLength(20);
      for (const write of writes) {
        const answer = JSON.parse(write.stdout) as { key: string; modRevision: number };
        const kv = listed.kvs.find((k) => k.key === answer.key);
        expect(kv?.modRevision).toBe(answer.modRevision);
        expect(kv?.value).toBe(`v${answer.key.split('/')[2]}`);
      }
    } finally {
      await second.cli.stop('SIGINT');
    }
  });

  it('takes its settings from the environment and a config file, flags first', async () => {
    const config = join(dataRoot, 'muster.json');
    writeFileSync(
      config,
      JSON.stringify({ listen: '127.0.0.1:1', dataDir: join(dataRoot, 'from-config'), maxValueSize: '16' }),
    );
    const server = await startServerProcess([], { env: { MUSTER_CONFIG: config, MUSTER_DATA_DIR: ':memory:' } });
    try {
      // The flag (--listen 127.0.0.1:0) beat the file's port 1; the environment beat the file's data dir.
      expect(server.cli.stdout).toContain('data: in memory');
      const env = { MUSTER_ENDPOINT: server.url };
      const small = await runMuster(['put', '/small', '0123456789'], { env });
      expect(small.code).toBe(0);
      const large = await runMuster(['put', '/large', '0123456789abcdefXYZ'], { env });
      expect(large.code).toBe(1);
      expect(large.stderr).toContain('too large');
    } finally {
      await server.cli.stop('SIGINT');
    }
  });

  it('a running watch rides out a server restart: nothing missed, nothing printed twice', async () => {
    const dataDir = join(dataRoot, 'watched');
    const first = await startServerProcess(['--data-dir', dataDir]);
    const port = new URL(first.url).port;
    const env = { MUSTER_ENDPOINT: first.url };
    const a = JSON.parse((await runMuster(['put', '/w/a', '1', '--json'], { env })).stdout) as { revision: number };
    const watch = spawnMuster(['watch', '/w/', '--from-revision', String(a.revision)], { env });
    let second: ServerProcess | null = null;
    try {
      await watch.waitFor(/PUT\s+\/w\/a = 1/);
      expect((await first.cli.stop('SIGTERM')).code).toBe(0);
      await watch.waitFor(/watch: .*retrying/, 'stderr');
      second = await startServerProcess(['--data-dir', dataDir], {}, port);
      await runMuster(['put', '/w/b', '2'], { env });
      await watch.waitFor(/PUT\s+\/w\/b = 2/);
      expect(watch.stderr).toContain(`reconnected to ${first.url}, resuming at revision ${a.revision + 1}`);
    } finally {
      const ended = await watch.stop('SIGINT');
      if (second) await second.cli.stop('SIGINT');
      expect(ended.code).toBe(0);
    }
    expect(
      watch.stdout
        .trimEnd()
        .split('\n')
        .map((line) => line.split(' = ')[0]?.replace(/\s+/g, ' ')),
    ).toEqual(['PUT /w/a', 'PUT /w/b']);
  });

  it('exits 1 when its address is taken', async () => {
    const first = await startServerProcess(['--data-dir', ':memory:']);
    try {
      const port = new URL(first.url).port;
      const second = await runMuster(['server', '--listen', `127.0.0.1:${port}`, '--data-dir', ':memory:']);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the address is in use`);
    } finally {
      await first.cli.stop('SIGINT');
    }
  });

  it('exits 2 on a bad setting, naming it', async () => {
    const result = await runMuster(['server', '--listen', 'nowhere', '--data-dir', ':memory:']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid listen address "nowhere"');
  });
});
