import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { eventually } from '../conformance/harness.js';
import { FakeDirectory } from '../jobs/fake-directory.js';
import { assertBuilt, muster as runMuster } from './cli-harness.js';

/** `muster desired get GROUP --node N`: what a recipe on N converges to, during a rolling step too. */
describe('muster desired get --node (CLI)', () => {
  let server: MusterServer;
  const muster = (args: string[]) => runMuster(args, { env: { MUSTER_ENDPOINT: server.url } });

  beforeAll(async () => {
    assertBuilt();
    const directory = new FakeDirectory();
    for (const node of ['web-1', 'web-2', 'web-3']) directory.add(node, { attrs: { role: 'web' } });
    server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
      nodeDirectory: directory,
      planTickMs: 50,
    });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('tells a node not yet released by a rolling step the previous state, the canary the new one', async () => {
    const client = new MusterClient({ endpoints: server.url });
    await client.putGroup('web', 'role:web');
    await client.setDesired('web', { state: 'converged', version: 'v41' });
    const before = await muster(['desired', 'get', 'web', '--node', 'web-2', '--json']);
    expect(before.code, before.stderr).toBe(0);
    expect(JSON.parse(before.stdout).effective).toEqual({ state: 'converged', version: 'v41', params: {} });
    const plan = await client.applyPlan(
      'name: p\nsteps:\n  - id: web\n    group: web\n    desired: { state: converged, version: v42 }\n' +
        '    until: converged\n    rolling: { canary: 1, batch: 2 }\n' +
        '    health: { key: "/health/{node}", equals: ok, timeout: 1m }\n',
    );
    await client.reportState('web', 'web-1', 'converged', 'v42');
    await eventually(async () => {
      expect((await client.getPlan(plan.id)).steps[0]?.batches[0]?.state).toBe('health');
    }, 10_000);
    const held = await muster(['desired', 'get', 'web', '--node', 'web-2', '--json']);
    expect(JSON.parse(held.stdout).effective.version).toBe('v41');
    expect(JSON.parse(held.stdout).desired.rollout.released).toEqual(['web-1']);
    const canary = await muster(['desired', 'get', 'web', '--node', 'web-1']);
    expect(canary.stdout).toMatch(/^web: converged v42$/m);
    expect(canary.stdout).toMatch(/rolling out \(plan .+\): released to web-1/);
    expect(canary.stdout).toMatch(/^for web-1: converged v42$/m);
    const help = await muster(['desired', 'get', '--help']);
    expect(help.stdout).toMatch(/--node "\$\(hostname\)" --json/);
    // Six CLI processes: slow on a loaded machine.
  }, 90_000);
});
