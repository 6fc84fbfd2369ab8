import { describe, expect, test } from 'vitest';
import { batchesOf, parsePlan } from '../../src/plans/plan-spec.js';

const RELEASE = `name: release-v42
steps:
  - id: db
    group: db
    desired: { state: migrated, version: v42 }
    run: chef-client
    until: converged
    timeout: 15m
  - id: web
    after: [db]
    group: web
    desired: { state: converged, version: v42 }
    run: chef-client
    rolling: { canary: 1, batch: 25%, pause: 30s }
    health: { key: "/health/{node}", equals: ok, timeout: 5m }
  - id: lb
    after: [web]
    group: lb
    run: chef-client
`;

describe('plan files', () => {
  test("the issue's release plan parses, in order, with its settings", () => {
    const plan = parsePlan(RELEASE, 'release.yaml');
    expect(plan.name).toBe('release-v42');
    expect(plan.onFailure).toBe('stop');
    expect(plan.steps.map((s) => s.id)).toEqual(['db', 'web', 'lb']);
    const web = plan.steps[1]!;
    expect(web.rolling).toEqual({ canary: 1, batch: { percent: 25 }, pauseMs: 30_000 });
    expect(web.health).toEqual({ key: '/health/{node}', equals: 'ok', timeoutMs: 300_000 });
    expect(web.until).toBe('converged');
    expect(plan.steps[0]!.until).toBe('converged');
    expect(plan.steps[0]!.timeoutMs).toBe(900_000);
    expect(plan.steps[2]!.desired).toBeNull();
    expect(plan.steps[2]!.run).toEqual({ command: 'chef-client', args: [] });
  });

  test('JSON is a plan file too, and steps are ordered by after whatever the file order', () => {
    const plan = parsePlan(
      JSON.stringify({
        name: 'p',
        steps: [
          { id: 'c', group: 'g', run: 'x', after: ['b'] },
          { id: 'b', group: 'g', run: 'x', after: ['a'] },
          { id: 'a', group: 'g', run: 'x' },
        ],
      }),
      'p.json',
    );
    expect(plan.steps.map((s) => s.id)).toEqual(['a', 'b', 'c']);
  });

  test.each([
    [
      'a cycle, named',
      'name: p\nsteps:\n  - id: a\n    group: g\n    run: x\n    after: [b]\n  - id: b\n    group: g\n    run: x\n    after: [a]\n',
      /p\.yaml:\d+: the steps' "after" make a cycle: (a → b → a|b → a → b)/,
    ],
    [
      'an unknown field, with its line',
      'name: p\nsteps:\n  - id: a\n    group: g\n    run: x\n    rollout: fast\n',
      /^p\.yaml:6: unknown field "rollout" in a step/,
    ],
    [
      'after naming no step',
      'name: p\nsteps:\n  - id: a\n    group: g\n    run: x\n    after: [zz]\n',
      /^p\.yaml:3: step a: after names "zz"/,
    ],
    [
      'a duplicate id',
      'name: p\nsteps:\n  - id: a\n    group: g\n    run: x\n  - id: a\n    group: g\n    run: x\n',
      /^p\.yaml:6: the id "a" is used twice \(first on line 3\)/,
    ],
    [
      'a step with nothing to do',
      'name: p\nsteps:\n  - id: a\n    group: g\n',
      /^p\.yaml:3: step a: give desired, run, or both/,
    ],
    [
      'a bad batch',
      'name: p\nsteps:\n  - id: a\n    group: g\n    run: x\n    rolling: { batch: 0% }\n',
      /^p\.yaml:6: step a: rolling\.batch/,
    ],
    [
      'a health key without {node}',
      'name: p\nsteps:\n  - id: a\n    group: g\n    run: x\n    health: { key: /health, equals: ok }\n',
      /^p\.yaml:6: step a: health\.key/,
    ],
    ['broken YAML', 'name: p\nsteps:\n  - id: [\n', /^p\.yaml:\d+: /],
    ['no steps', 'name: p\nsteps: []\n', /^p\.yaml:2: steps must be a non-empty list/],
    [
      'a bad timeout',
      'name: p\nsteps:\n  - id: a\n    group: g\n    run: x\n    timeout: soon\n',
      /^p\.yaml:6: step a: timeout/,
    ],
  ])('refused: %s', (_what, text, message) => {
    let error: unknown;
    try {
      parsePlan(text, 'p.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'invalid_plan' });
    expect((error as Error).message).toMatch(message);
  });

  test('batches: the canary first, then batches of a count or a share, every node once', () => {
    const nodes = ['w5', 'w1', 'w3', 'w2', 'w4', 'w6', 'w7', 'w8', 'w9'];
    expect(batchesOf(nodes, null)).toEqual([[...nodes].sort()]);
    const rolled = batchesOf(nodes, { canary: 1, batch: { percent: 25 }, pauseMs: 0 });
    expect(rolled).toEqual([['w1'], ['w2', 'w3', 'w4'], ['w5', 'w6', 'w7'], ['w8', 'w9']]);
    expect(batchesOf(nodes, { canary: 0, batch: { count: 4 }, pauseMs: 0 }).map((b) => b.length)).toEqual([4, 4, 1]);
    expect(batchesOf([], { canary: 1, batch: { count: 2 }, pauseMs: 0 })).toEqual([]);
  });
});
