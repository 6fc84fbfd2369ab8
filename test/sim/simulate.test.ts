import { describe, expect, it } from 'vitest';
import { BUILTIN_SCENARIOS, loadScenario } from '../../src/sim/builtin-scenarios.js';
import { parseFaults } from '../../src/sim/faults.js';
import { formatSummary, formatTimeline } from '../../src/sim/report.js';
import { parseScenario, ScenarioError } from '../../src/sim/scenario.js';
import { simulate } from '../../src/sim/simulation.js';
import type { SimulationResult } from '../../src/sim/simulation.js';
import { faultyLock } from './faulty-lock.js';

/** Everything a seed reproduces: the timeline and the summary without its wall time. */
function reproducible(result: SimulationResult): string {
  return formatTimeline(result) + formatSummary(result).replace(/^wall time.*\n/m, '');
}

const CRASHES = parseFaults('crash=5%');

/**
 * A failed plan failed because a node crashed in its batch: its reason names the batch's
 * job, and the timeline shows a node that was given that job, crashed while it ran, and
 * reported it failed on its return.
 */
function expectFailedByACrash(result: SimulationResult): void {
  const reason = result.summary.plan?.reason ?? '';
  const job = /^step \S+ failed: batch \d+ of \d+: job (\S+) failed: \d+ of \d+ nodes failed/.exec(reason)?.[1];
  expect(job, `the plan's reason: ${reason}`).toBeDefined();
  const reports = result.timeline.filter(
    (e) => e.what === `job ${job}: reported failed (it was running when the node went down)`,
  );
  const culprits = reports.filter((report) => {
    const given = result.timeline.find((e) => e.node === report.node && e.what === `job ${job}: chef-client`);
    return (
      given !== undefined &&
      result.timeline.some(
        (e) => e.node === report.node && e.what.startsWith('crash: ') && e.at >= given.at && e.at <= report.at,
      )
    );
  });
  expect(culprits.length, `a node of job ${job} that crashed while it ran (${reason})`).toBeGreaterThan(0);
}

describe('built-in scenarios pass with 5% crashes', () => {
  // Seed 1 at 100 nodes (the size; `npm run bench -- simulate` times these), seeds 2-5
  // at the scenario's own node count (rolling-release: 20), to keep the file short on two cores.
  const SMALL: Partial<Record<(typeof BUILTIN_SCENARIOS)[number], number>> = { 'rolling-release': 20 };
  for (const name of BUILTIN_SCENARIOS) {
    it(`${name}, seed 1 at 100 nodes, seeds 2-5 at ${SMALL[name] ?? 'its own count'}`, async () => {
      const scenario = await loadScenario(name);
      for (let seed = 1; seed <= 5; seed++) {
        const nodes = seed === 1 ? 100 : (SMALL[name] ?? scenario.nodes);
        const result = await simulate(scenario, { nodes, seed, faults: CRASHES });
        expect(result.violations, `${name} seed ${seed}:\n${formatSummary(result)}`).toEqual([]);
        expect(result.summary.outcome).toBe('done');
        expect(result.summary.finishedNodes).toBe(nodes);
        expect(result.summary.release).toBe(scenario.release !== null);
        if (scenario.release) {
          // The plan ran to its end: complete, or stopped by a node that crashed in its batch.
          expect(['complete', 'failed']).toContain(result.summary.plan?.state);
          expect(result.summary.jobAssignments).toBeGreaterThan(0);
          if (result.summary.plan?.state === 'failed') expectFailedByACrash(result);
        }
      }
    }, 300_000);
  }

  it('kubeadm at 30 nodes with crashes, delays and partitions elects a leader and every node joins', async () => {
    const result = await simulate(await loadScenario('kubeadm'), {
      nodes: 30,
      seed: 11,
      faults: parseFaults('crash=5%,delay=0-3s,partition=2%'),
    });
    expect(result.violations).toEqual([]);
    expect(result.summary.finishedNodes).toBe(30);
    expect(result.summary.leadersElected).toBeGreaterThanOrEqual(1);
    expect(result.timeline.filter((e) => e.what.includes('join-token')).length).toBeGreaterThan(0);
  }, 120_000);
});

describe('determinism', () => {
  it('the same seed gives a byte-identical timeline; another seed differs', async () => {
    const scenario = await loadScenario('noah-stack');
    const options = { nodes: 12, faults: parseFaults('crash=5%,delay=0-3s') };
    const a = await simulate(scenario, { ...options, seed: 42 });
    const b = await simulate(scenario, { ...options, seed: 42 });
    const c = await simulate(scenario, { ...options, seed: 43 });
    expect(a.timeline.length).toBeGreaterThan(20);
    expect(reproducible(b)).toBe(reproducible(a));
    expect(reproducible(c)).not.toBe(reproducible(a));
  }, 120_000);

  it('a release too (agents, their event streams, the plan runner and the job scheduler on the virtual clock)', async () => {
    const scenario = await loadScenario('rolling-release');
    const options = { nodes: 16, faults: parseFaults('crash=5%,delay=0-3s,partition=2%') };
    const a = await simulate(scenario, { ...options, seed: 42 });
    const b = await simulate(scenario, { ...options, seed: 42 });
    expect(a.summary.jobAssignments).toBeGreaterThan(0);
    expect(reproducible(b)).toBe(reproducible(a));
  }, 120_000);
});

const LOCK_SCENARIO = `name: lock-contention
nodes: 8
start: 0s
ttl: 10s
limit: 10m
steps:
  - lock: { name: db, hold: 1-3s }
  - put: { key: '/done/{node}', value: 'yes' }
`;

describe('the checker catches a broken lock', () => {
  it('the server lock holds: no violation', async () => {
    const result = await simulate(parseScenario(LOCK_SCENARIO, 'lock.yaml'), {
      seed: 3,
      faults: parseFaults('delay=0-3s'),
    });
    expect(result.violations).toEqual([]);
    expect(result.summary.lockAcquisitions).toBe(8);
  }, 60_000);

  it('a check-then-write lock is caught holding twice', async () => {
    const result = await simulate(parseScenario(LOCK_SCENARIO, 'lock.yaml'), {
      seed: 3,
      faults: parseFaults('delay=0-3s'),
      lockImpl: faultyLock,
    });
    expect(result.violations.length, formatSummary(result)).toBeGreaterThan(0);
    expect(result.violations.map((v) => v.invariant)).toContain('one lock holder');
    expect(formatSummary(result)).toMatch(/violations\s+\d+/);
    expect(JSON.stringify(result.violations)).toMatch(/db/);
  }, 60_000);
});

describe('scenario errors name the file and line', () => {
  const cases: [string, string, RegExp][] = [
    ['an unknown step kind', 'name: x\nnodes: 2\nsteps:\n  - sleep: 1s\n  - jump: 3\n', /\(bad\.yaml:5\): /],
    ['an unknown top-level field', 'name: x\nnodes: 2\ncolour: red\nsteps:\n  - sleep: 1s\n', /bad\.yaml:3.*colour/],
    ['a bad duration', 'name: x\nnodes: 2\nsteps:\n  - sleep: 1s\n  - sleep: soon\n', /bad\.yaml:5/],
    ['broken YAML', 'name: x\nnodes: 2\nsteps:\n  - sleep: [1s\n', /^bad\.yaml:\d+: /],
    ['when before any elect', 'name: x\nnodes: 2\nsteps:\n  - when: leader\n    sleep: 1s\n', /bad\.yaml:4.*elect/],
  ];
  for (const [what, text, message] of cases) {
    it(what, () => {
      expect(() => parseScenario(text, 'bad.yaml')).toThrow(ScenarioError);
      expect(() => parseScenario(text, 'bad.yaml')).toThrow(message);
    });
  }

  it('JSON scenarios parse too, with lines', async () => {
    const scenario = parseScenario(
      JSON.stringify({ name: 'j', nodes: 3, steps: [{ put: { key: '/j/{node}', value: 'v' } }] }, null, 2),
      'j.json',
    );
    const result = await simulate(scenario, { seed: 1 });
    expect(result.summary.finishedNodes).toBe(3);
    expect(() => parseScenario('{\n  "name": "j",\n  "nodes": 3,\n  "steps": [{ "fly": 1 }]\n}', 'j.json')).toThrow(
      /\(j\.json:4\): /,
    );
  });
});
