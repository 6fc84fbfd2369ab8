import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { run } from '../../src/cli/run.js';

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (chunk: string | Uint8Array) => (stdout += String(chunk)) },
    stderr: { write: (chunk: string | Uint8Array) => (stderr += String(chunk)) },
    stdin: new PassThrough(),
    env: {},
  });
  return { code, stdout, stderr };
}

describe('muster simulate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-sim-'));

  it('--list names the built-ins', async () => {
    const r = await cli('simulate', '--list');
    expect(r.code).toBe(0);
    for (const name of ['kubeadm', 'noah-stack', 'hadoop-barrier', 'rolling-release']) expect(r.stdout).toContain(name);
  });

  it('runs a built-in and prints a timeline and a summary; exit 0', async () => {
    const r = await cli('simulate', 'kubeadm', '--nodes', '12', '--seed', '5', '--faults', 'crash=5%', '--timeline');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/scenario\s+kubeadm: 12 nodes, seed 5/);
    expect(r.stdout).toMatch(/finished\s+12 of 12 nodes/);
    expect(r.stdout).toMatch(/invariants\s+all held/);
    expect(r.stdout).toMatch(/join-token/);
  }, 60_000);

  it('--json gives the summary and the violations', async () => {
    const r = await cli('simulate', 'noah-stack', '--seed', '2', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { summary: { nodes: number; seed: number }; violations: unknown[] };
    expect(out.summary).toMatchObject({ nodes: 4, seed: 2 });
    expect(out.violations).toEqual([]);
  }, 60_000);

  it('a user scenario that cannot finish exits 6 and says why', async () => {
    const file = join(dir, 'stuck.yaml');
    writeFileSync(file, 'name: stuck\nnodes: 3\nlimit: 1m\nsteps:\n  - wait: { key: /never }\n');
    const r = await cli('simulate', file);
    expect(r.code).toBe(ExitCode.VIOLATION);
    expect(r.stdout).toMatch(/0 of 3 nodes/);
    expect(r.stdout).toMatch(/violations\s+1/);
  }, 60_000);

  it('rolling-release: the plan runner carries the release out on simulated agents; exit 0', async () => {
    const r = await cli('simulate', 'rolling-release', '--nodes', '10', '--seed', '3', '--timeline');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/plan\s+release-v42 \([^)]+\): complete/);
    expect(r.stdout).toMatch(/settled\s+10 of 10 nodes/);
    expect(r.stdout).toMatch(/step web batch 1\/4 \(web-1\): running/);
    expect(r.stdout).toMatch(/invariants\s+all held/);
  }, 60_000);

  it('a release whose plan cannot end before the limit exits 6 and says where it stands', async () => {
    const file = join(dir, 'gated.yaml');
    writeFileSync(
      file,
      [
        'name: gated',
        'nodes: 3',
        'limit: 10m',
        "groups: { app: 'role:node' }",
        'desired: { app: { state: up, version: v1 } }',
        'plan:',
        '  name: gated',
        '  steps:',
        '    - { id: app, group: app, desired: { state: up, version: v2 }, run: chef-client,',
        "        health: { key: '/never/{node}', equals: ok, timeout: 1h } }",
        '',
      ].join('\n'),
    );
    const r = await cli('simulate', file);
    expect(r.code).toBe(ExitCode.VIOLATION);
    expect(r.stdout).toMatch(/the plan had not ended \(running: app running\)/);
  }, 60_000);

  it('a release whose operator the server refuses ends at once with exit 6 naming why', async () => {
    const file = join(dir, 'refused.yaml');
    writeFileSync(
      file,
      "name: refused\nnodes: 2\ngroups: { app: 'role:node' }\ndesired: { app: { state: 'not a state' } }\nplan: { name: p, steps: [{ id: a, group: app, run: chef-client }] }\n",
    );
    const r = await cli('simulate', file);
    expect(r.code).toBe(ExitCode.VIOLATION);
    expect(r.stdout).toMatch(/operator: the operator failed: .*state/);
    expect(r.stdout).toMatch(/virtual time\s+0\.\d+s/);
    // The release summary, though the plan was never applied (not the summary of a scenario of steps).
    expect(r.stdout).toContain('plan             not applied\n');
    expect(r.stdout).toMatch(/settled\s+0 of 2 nodes/);
    expect(r.stdout).not.toMatch(/leaders elected/);
  }, 60_000);

  it('a release scenario with steps too, or a bad plan, is a usage error naming file:line', async () => {
    const both = join(dir, 'both.yaml');
    writeFileSync(
      both,
      "name: both\ngroups: { a: 'role:node' }\nplan: { name: p, steps: [{ id: a, group: a, run: x }] }\nsteps:\n  - sleep: 1s\n",
    );
    const r = await cli('simulate', both);
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toContain(`${both}:5: a scenario has steps or a plan, not both`);
    const cycle = join(dir, 'cycle.yaml');
    writeFileSync(
      cycle,
      "name: cycle\ngroups: { a: 'role:node' }\nplan:\n  name: p\n  steps:\n    - { id: a, group: a, run: x, after: [b] }\n    - { id: b, group: a, run: x, after: [a] }\n",
    );
    const c = await cli('simulate', cycle);
    expect(c.code).toBe(ExitCode.USAGE);
    expect(c.stderr).toContain(`${cycle}:6: plan: the steps' "after" make a cycle: a → b → a`);
  });

  it('a bad scenario file is a usage error naming file:line', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'name: bad\nnodes: 3\nsteps:\n  - sleep: 1s\n  - teleport: /x\n');
    const r = await cli('simulate', file);
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toContain(`${file}:5`);
  });

  it('bad options are usage errors', async () => {
    expect((await cli('simulate', 'kubeadm', '--nodes', 'many')).code).toBe(ExitCode.USAGE);
    expect((await cli('simulate', 'kubeadm', '--faults', 'crash=500%')).code).toBe(ExitCode.USAGE);
    const missing = await cli('simulate', join(dir, 'nope.yaml'));
    expect(missing.code).toBe(ExitCode.USAGE);
    expect(missing.stderr).toMatch(/no such file.*built-in scenarios: kubeadm/);
    expect((await cli('simulate')).code).toBe(ExitCode.USAGE);
  });

  it('--help teaches with examples', async () => {
    const r = await cli('simulate', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:\n\s+\$ muster simulate/);
  });
});
