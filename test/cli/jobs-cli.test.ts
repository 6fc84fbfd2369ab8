import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimFleet } from '../../bench/sim-agents.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { FakeDirectory } from '../jobs/fake-directory.js';
import { assertBuilt, muster as runMuster } from './cli-harness.js';

/** `muster run`, `muster jobs`, `muster job …` through the real binary, against simulated agents. */
describe('muster run and jobs (CLI)', () => {
  let server: MusterServer;
  let fleet: SimFleet;
  const muster = (args: string[]) => runMuster(args, { env: { MUSTER_ENDPOINT: server.url } });

  beforeAll(async () => {
    assertBuilt();
    const directory = new FakeDirectory();
    server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
      nodeDirectory: directory,
      jobTickMs: 100,
    });
    fleet = new SimFleet(server.url);
    for (const node of ['web-1', 'web-2', 'web-3']) {
      directory.add(node, { attrs: { role: 'web' } });
      fleet.add(node, {
        echo: { output: ['hello from ' + node, 'second line'] },
        fail: { exitCode: node === 'web-2' ? 4 : 0, output: ['trying'] },
        long: { durationMs: 60_000 },
      });
    }
    await fleet.connectAll();
  });
  afterAll(async () => {
    fleet.close();
    await server.stop();
  });

  it('muster run --follow prints each node’s output prefixed by its name and exits 0', async () => {
    const result = await muster(['run', 'role:web', 'echo', '--follow']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n').sort();
    expect(lines).toEqual([
      'web-1: hello from web-1',
      'web-1: second line',
      'web-2: hello from web-2',
      'web-2: second line',
      'web-3: hello from web-3',
      'web-3: second line',
    ]);
    expect(result.stderr).toMatch(/complete: 3 succeeded/);
  });

  it('exits 1 when a node fails, naming it', async () => {
    const result = await muster(['run', 'role:web', 'fail', '--concurrency', '1', '--failure-threshold', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/web-2: failed, exit 4/);
  });

  it('exits 1 on a quorum failure and 2 on a bad option', async () => {
    const quorum = await muster(['run', 'role:db', 'echo']);
    expect(quorum.code).toBe(1);
    expect(quorum.stderr).toMatch(/quorum_failed/);
    const bad = await muster(['run', 'role:web', 'echo', '--quorum', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/quorum/);
  });

  it('jobs, job show, job output, job abort', async () => {
    const detached = await muster(['run', 'role:web', 'long', '--detach']);
    expect(detached.code).toBe(0);
    const id = detached.stdout.trim();
    expect(id).toMatch(/^[0-9a-z]{9}-[0-9a-f]{6}$/);
    const list = await muster(['jobs']);
    expect(list.stdout).toContain(id);
    const abort = await muster(['job', 'abort', id]);
    expect(abort.code).toBe(0);
    const client = new MusterClient({ endpoints: server.url });
    await eventually(async () => expect((await client.getJob(id)).state).toBe('aborted'));
    const show = await muster(['job', 'show', id]);
    expect(show.stdout).toMatch(/state\s+aborted/);
    expect(show.stdout).toMatch(/web-1\s+aborted/);
    const echo = await muster(['--json', 'run', 'role:web', 'echo']);
    const echoId = (JSON.parse(echo.stdout) as { id: string }).id;
    const output = await muster(['job', 'output', echoId, '--node', 'web-3']);
    expect(output.stdout).toBe('hello from web-3\nsecond line\n');
    const all = await muster(['job', 'output', echoId]);
    expect(all.stdout.split('\n').filter(Boolean)).toHaveLength(6);
    const missing = await muster(['job', 'show', '0mhq3x1k2-4f9a0c']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no job has the id/);
    const dashed = await muster(['--json', 'run', 'role:web', 'echo', '--detach', '--', '-o', 'recipe[app]']);
    expect((JSON.parse(dashed.stdout) as { args: string[] }).args).toEqual(['-o', 'recipe[app]']);
    const help = await muster(['run', '--help']);
    expect(help.stdout).toMatch(/Examples:/);
  }, 120_000);

  it('muster trigger add, list, show, rm', async () => {
    const add = await muster([
      'trigger',
      'add',
      'converge-web',
      'echo',
      '--on',
      '/ephemerals/backends/',
      '--run',
      'role:web',
      '--debounce',
      '200ms',
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/a change under \/ephemerals\/backends\/ runs echo on role:web/);
    expect((await muster(['trigger', 'list'])).stdout).toMatch(/converge-web\s+\/ephemerals\/backends\/\s+0.2s/);
    expect((await muster(['put', '/ephemerals/backends/a', 'up'])).code).toBe(0);
    const client = new MusterClient({ endpoints: server.url });
    await eventually(async () => expect((await client.getTrigger('converge-web')).jobs).toHaveLength(1));
    const jobs = (await muster(['trigger', 'show', 'converge-web'])).stdout;
    expect(jobs).toMatch(/jobs: [0-9a-z]{9}-[0-9a-f]{6}/);
    expect((await muster(['trigger', 'rm', 'converge-web'])).code).toBe(0);
    const gone = await muster(['trigger', 'show', 'converge-web']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/no trigger is named/);
  }, 120_000);
});
