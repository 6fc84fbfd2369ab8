/**
 * The plan invariants of the simulator's checker (desired state, rolling batch,
 * step order): each is shown to catch a broken run, on a constructed history
 * and (where a node's behaviour can break it) on a real simulated release with
 * a deliberately wrong chef-client recipe.
 */
import { describe, expect, it } from 'vitest';
import { History } from '../../src/sim/history.js';
import type { PlanSeen } from '../../src/sim/history.js';
import { checkInvariants } from '../../src/sim/invariants.js';
import { loadScenario } from '../../src/sim/builtin-scenarios.js';
import { formatSummary } from '../../src/sim/report.js';
import { simulate } from '../../src/sim/simulation.js';
import { ignoresRollout, staleRecipe } from './faulty-recipe.js';

const V41 = { state: 'converged', version: 'v41' };
const V42 = { state: 'converged', version: 'v42' };

type Step = PlanSeen['steps'][number];

function step(over: Partial<Step> & Pick<Step, 'id'>): Step {
  return {
    group: over.id,
    after: [],
    state: 'complete',
    startedAt: 0,
    finishedAt: 100,
    desired: V42,
    previous: V41,
    rolling: null,
    skipped: 0,
    batches: [],
    ...over,
  };
}

/** A release of db (2 nodes) then web (9 nodes: canary 1, batches of 4) that went right. */
function goodRun(): History {
  const history = new History(() => 0);
  const web = Array.from({ length: 9 }, (_, i) => `web-${i + 1}`);
  history.plans.push({
    id: 'p1',
    name: 'release',
    state: 'complete',
    reason: null,
    steps: [
      step({
        id: 'db',
        startedAt: 10,
        finishedAt: 50,
        batches: [{ nodes: ['db-1', 'db-2'], jobId: 'j-db', startedAt: 10 }],
      }),
      step({
        id: 'web',
        after: ['db'],
        startedAt: 60,
        finishedAt: 300,
        rolling: { canary: 1, batch: { count: 4 } },
        batches: [
          { nodes: web.slice(0, 1), jobId: 'j-1', startedAt: 60 },
          { nodes: web.slice(1, 5), jobId: 'j-2', startedAt: 120 },
          { nodes: web.slice(5), jobId: 'j-3', startedAt: 200 },
        ],
      }),
    ],
  });
  for (const node of ['db-1', 'db-2']) {
    history.jobsSeen.push({ job: 'j-db', node, at: 11 });
    history.stateReports.push({ node, group: 'db', ...V42, at: 30 });
  }
  web.forEach((node, i) => {
    const batch = i === 0 ? 0 : i < 5 ? 1 : 2;
    const at = [60, 120, 200][batch] as number;
    history.jobsSeen.push({ job: `j-${batch + 1}`, node, at: at + 1 });
    history.stateReports.push({ node, group: 'web', ...V42, at: at + 20 });
  });
  for (const node of [...web, 'db-1', 'db-2'])
    history.endStates.push({ node, group: node.split('-')[0] as string, up: true, desired: V42, actual: V42 });
  return history;
}

const invariants = (history: History) => checkInvariants(history, 400).map((v) => v.invariant);

describe('the plan invariants on constructed runs', () => {
  it('a run that went right breaks none', () => {
    expect(checkInvariants(goodRun(), 400)).toEqual([]);
  });

  it('desired state: a node up at the end in the old state is caught; one down at the end is not', () => {
    const history = goodRun();
    history.endStates[3] = { ...history.endStates[3]!, actual: V41 };
    const violations = checkInvariants(history, 400);
    expect(violations.map((v) => v.invariant)).toEqual(['desired state']);
    expect(violations[0]?.message).toMatch(
      /web-4 is up at the end and is to be converged@v42 in group web, but reports converged@v41/,
    );
    history.endStates[3] = { ...history.endStates[3]!, up: false };
    expect(invariants(history)).toEqual([]);
    history.endStates.push({ node: 'web-10', group: 'web', up: true, desired: V42, actual: null });
    expect(checkInvariants(history, 400)[0]?.message).toMatch(/web-10 .* reports nothing/);
  });

  it('rolling batch: a canary of two nodes is caught', () => {
    const history = goodRun();
    const steps = history.plans[0]!.steps as Step[];
    const web = steps[1]!;
    steps[1] = { ...web, batches: [{ ...web.batches[0]!, nodes: ['web-1', 'web-2'] }, ...web.batches.slice(1)] };
    const violations = checkInvariants(history, 400);
    expect(violations.map((v) => v.invariant)).toContain('rolling batch');
    expect(violations.map((v) => v.message).join('\n')).toMatch(
      /step web batch 1 \(the canary, 1 allowed\) has 2 nodes/,
    );
  });

  it('rolling batch: a job that reaches more nodes than its batch is caught', () => {
    const history = goodRun();
    history.jobsSeen.push({ job: 'j-2', node: 'web-7', at: 121 });
    const violations = checkInvariants(history, 400);
    expect(violations.map((v) => v.invariant)).toEqual(['rolling batch']);
    expect(violations[0]?.message).toMatch(/job j-2 reached 5 nodes, 1 of them not in the batch \(web-7\)/);
  });

  it('rolling batch: nodes moving to the new state before their batch started are caught', () => {
    const history = goodRun();
    // web-9 (batch 3, from 200) reports v42 while only the canary is released.
    history.stateReports.push({ node: 'web-9', group: 'web', ...V42, at: 90 });
    const violations = checkInvariants(history, 400);
    expect(violations.map((v) => v.invariant)).toEqual(['rolling batch']);
    expect(violations[0]?.message).toMatch(
      /by 0\.090s, 2 nodes of web reported converged@v42 \(the last web-9\), but the 1 batches started by then allow 1/,
    );
    expect(violations[0]?.at).toBe(90);
  });

  it('step order: a step whose record starts before the step it follows completed is caught', () => {
    const history = goodRun();
    const steps = history.plans[0]!.steps as Step[];
    steps[1] = { ...steps[1]!, startedAt: 40 };
    const violations = checkInvariants(history, 400);
    expect(violations.map((v) => v.invariant)).toEqual(['step order']);
    expect(violations[0]?.message).toMatch(
      /step web started at 0\.040s \(the plan record says it started\) before step db, which it comes after, completed \(at 0\.050s\)/,
    );
  });

  it('step order: a job of the step reaching a node early, or a node moving early, is caught', () => {
    const history = goodRun();
    history.jobsSeen.push({ job: 'j-1', node: 'web-1', at: 45 });
    expect(
      checkInvariants(history, 400)
        .map((v) => v.message)
        .join('\n'),
    ).toMatch(/its job j-1 reached web-1/);
    const other = goodRun();
    other.stateReports.unshift({ node: 'web-1', group: 'web', ...V42, at: 20 });
    expect(invariants(other)).toContain('step order');
    expect(
      checkInvariants(other, 400)
        .map((v) => v.message)
        .join('\n'),
    ).toMatch(/web-1 reported converged@v42/);
  });

  it('step order: a step that started although the one before never completed is caught', () => {
    const history = goodRun();
    const steps = history.plans[0]!.steps as Step[];
    steps[0] = { ...steps[0]!, state: 'failed' };
    expect(
      checkInvariants(history, 400)
        .map((v) => v.message)
        .join('\n'),
    ).toMatch(/completed \(it never did\)/);
  });
});

describe('the plan invariants on simulated releases', () => {
  it('without faults the release completes: db and web on v42, lb untouched, no violation', async () => {
    const result = await simulate(await loadScenario('rolling-release'), { nodes: 30, seed: 2 });
    expect(result.violations, formatSummary(result)).toEqual([]);
    expect(result.summary.outcome).toBe('done');
    expect(result.summary.plan?.state).toBe('complete');
    // 26 web nodes: the canary, then batches of 25% (7): 1, 7, 7, 7, 4.
    const events = result.timeline.filter((e) => e.node === 'plan' && / batch \d\/5 .*: running/.test(e.what));
    expect(events.map((e) => /\((\d+ nodes|web-\d+)/.exec(e.what)?.[1])).toEqual([
      'web-1',
      '7 nodes',
      '7 nodes',
      '7 nodes',
      '4 nodes',
    ]);
    expect(result.summary.jobAssignments).toBe(30);
  }, 60_000);

  it('a recipe that ignores the rollout (every web node moves at once) breaks the rolling batch invariant', async () => {
    const result = await simulate(await loadScenario('rolling-release'), {
      nodes: 20,
      seed: 1,
      recipe: ignoresRollout,
    });
    expect(result.violations.map((v) => v.invariant)).toContain('rolling batch');
    expect(formatSummary(result)).toMatch(
      /rolling batch: plan release-v42 step web: by [\d.]+s, \d+ nodes of web reported converged@v42/,
    );
  }, 60_000);

  it('a recipe that never takes a new desired state leaves nodes behind: the desired state invariant', async () => {
    const result = await simulate(await loadScenario('rolling-release'), { nodes: 10, seed: 1, recipe: staleRecipe() });
    expect(result.summary.plan?.state).toBe('failed');
    const violations = result.violations.filter((v) => v.invariant === 'desired state');
    expect(violations.map((v) => v.message)).toEqual([
      'db-1 is up at the end and is to be migrated@v42 in group db, but reports migrated@v41',
      'db-2 is up at the end and is to be migrated@v42 in group db, but reports migrated@v41',
    ]);
  }, 60_000);
});
