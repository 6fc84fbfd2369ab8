import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimFleet } from '../../bench/sim-agents.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { FakeDirectory } from '../jobs/fake-directory.js';
import { assertBuilt, muster as runMuster } from './cli-harness.js';

/** `muster group|desired|state|plan|plans` through the real binary, against simulated agents. */
describe('groups, desired state and plans (CLI)', () => {
  let server: MusterServer;
  let fleet: SimFleet;
  let dir: string;
  const muster = (args: string[]) => runMuster(args, { env: { MUSTER_ENDPOINT: server.url } });

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'muster-plans-cli-'));
    const directory = new FakeDirectory();
    server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
      nodeDirectory: directory,
      jobTickMs: 50,
      planTickMs: 50,
    });
    const client = new MusterClient({ endpoints: server.url });
    fleet = new SimFleet(server.url);
    for (const node of ['web-1', 'web-2', 'web-3']) {
      directory.add(node, { attrs: { role: 'web' } });
      fleet.add(node, {
        'chef-client': {
          output: ['converging'],
          effect: async (name) => {
            const desired = await client.getDesired('web');
            if (desired) await client.reportState('web', name, desired.state, desired.version);
          },
        },
      });
    }
    await fleet.connectAll();
  });
  afterAll(async () => {
    fleet.close();
    await server.stop();
  });

  it('group add/list/show, desired set/get, state report and state', async () => {
    expect((await muster(['group', 'add', 'web', 'role:web'])).code).toBe(0);
    expect((await muster(['group', 'list'])).stdout).toMatch(/web\s+role:web/);
    const set = await muster(['desired', 'set', 'web', 'converged', '--version', 'v41', '--param', 'image=web:v41']);
    expect(set.code, set.stderr).toBe(0);
    expect((await muster(['desired', 'get', 'web'])).stdout).toMatch(/web: converged v41 \(image=web:v41\)/);
    expect((await muster(['state', 'report', 'web', 'converged', '--version', 'v41', '--node', 'web-1'])).code).toBe(0);
    const state = await muster(['state', 'web']);
    // web-2 and web-3 have not reported: not converged, exit 1.
    expect(state.code).toBe(1);
    expect(state.stdout).toMatch(/web-1\s+up\s+converged\s+v41\s+yes/);
    expect(state.stdout).toMatch(/web-2\s+up\s+-\s+-\s+no/);
    const bad = await muster(['desired', 'set', 'web', 'converged', '--param', 'novalue']);
    expect(bad.code).toBe(2);
  });

  it('plan apply --dry-run shows the batches; apply --follow runs it and exits 0; plans and plan status', async () => {
    const file = join(dir, 'release.yaml');
    writeFileSync(
      file,
      'name: release-v42\nsteps:\n  - id: web\n    group: web\n    desired: { state: converged, version: v42 }\n    run: chef-client\n    rolling: { canary: 1, batch: 2 }\n',
    );
    const dry = await muster(['plan', 'apply', file, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('batch 1: web-1');
    expect(dry.stdout).toContain('batch 2: web-2 web-3');
    const run = await muster(['plan', 'apply', file, '--follow']);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(run.stdout).toMatch(/plan \S+ release-v42: complete/);
    const id = /plan (\S+) release-v42/.exec(run.stdout)![1]!;
    expect((await muster(['plans'])).stdout).toContain(id);
    expect((await muster(['plan', 'status', id])).stdout).toMatch(/batch 2: complete\s+web-2 web-3/);
    expect((await muster(['state', 'web'])).code).toBe(0);
  });

  it('a plan with a cycle fails with the line and the cycle, exit 2 (bad input), and nothing applied', async () => {
    const file = join(dir, 'cycle.yaml');
    writeFileSync(
      file,
      'name: p\nsteps:\n  - id: a\n    group: web\n    run: x\n    after: [b]\n  - id: b\n    group: web\n    run: x\n    after: [a]\n',
    );
    const result = await muster(['plan', 'apply', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/cycle\.yaml:\d+: the steps' "after" make a cycle/);
    const missing = await muster(['plan', 'apply', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(2);
  });
});
