/**
 * Issue 8's performance section: what a token costs. Two muster (file) servers run
 * at once, one with auth on (every request sends the admin token, every write is
 * audited) and one with `--insecure-no-auth`, and are driven in alternation: short
 * runs, put then get, the order flipped every round. A 2-core virtual machine drifts
 * by tens of percent over a minute; runs taken one right after the other, in both
 * orders, see the same machine, so their ratio is the price of auth and not the
 * drift. Each ratio is the median of the rounds' ratios (a round that a burst of
 * the machine's own work hit does not decide it); the rows sum every round of a system.
 */
import { join } from 'node:path';
import type { Running, System } from './kv-throughput.js';
import { driveWrk, measureRun, musterSystem, populateAndCheck } from './kv-throughput.js';
import type { BenchSettings, Measurement, Scenario, ScenarioResult } from './scenario.js';
import { oneAfterAnother, ratio } from './scenario.js';
import { WRK_INSTALL_HINT } from './wrk.js';

/** Rounds of alternation; each round runs each system once per operation. */
const ROUNDS = 10;

const WITH_TOKEN = 'muster (file), token';
const WITHOUT_AUTH = 'muster (file), no auth';

export const authCost: Scenario = {
  name: 'auth',
  title: 'auth cost: muster (file) with a token vs without auth, put and get, alternating runs',
  requires: [{ binary: 'wrk', installHint: WRK_INSTALL_HINT }],
  run: runAuthCost,
};

async function runAuthCost(settings: BenchSettings, log: (line: string) => void): Promise<ScenarioResult> {
  // Each system gets twice the measured time of one kv run per operation, in short runs.
  const roundSeconds = Math.max(1, Math.round((2 * settings.seconds) / ROUNDS));
  let rounds: readonly Measurement[] = [];
  const { measurements, notes } = await oneAfterAnother(
    (scratch) => [
      [
        musterSystem(WITH_TOKEN, join(scratch, 'with-token')),
        musterSystem(WITHOUT_AUTH, join(scratch, 'no-auth'), [], false),
      ] as const,
    ],
    async ([withToken, withoutAuth], notes) => {
      log('starting both servers');
      const a = await withToken.start();
      try {
        const b = await withoutAuth.start();
        try {
          rounds = await alternate(
            [
              [withToken, a],
              [withoutAuth, b],
            ],
            roundSeconds,
            settings,
            log,
            notes,
          );
          return (['put', 'get'] as const).flatMap((op) =>
            [WITH_TOKEN, WITHOUT_AUTH].map((label) =>
              combine(rounds.filter((r) => r.system === label && r.operation === op)),
            ),
          );
        } finally {
          await b.stop();
        }
      } finally {
        await a.stop();
      }
    },
  );
  const ratios = (['put', 'get'] as const).map((op) =>
    ratio(
      `muster (file) ${op} with a token / without auth, req/s (median of ${ROUNDS} rounds)`,
      medianRoundRatio(rounds, op),
      0.9,
      'at-least',
    ),
  );
  const load =
    `${ROUNDS} rounds of ${roundSeconds} s runs per system and operation, order flipped each round, after ` +
    `${settings.warmupSeconds} s of warm-up each; ${settings.connections} connections, ${settings.threads} wrk thread(s)`;
  return { load, measurements, ratios, notes };
}

async function alternate(
  systems: readonly (readonly [System, Running])[],
  roundSeconds: number,
  settings: BenchSettings,
  log: (line: string) => void,
  notes: string[],
): Promise<Measurement[]> {
  for (const [system, running] of systems) {
    if (settings.warmupSeconds > 0) await driveWrk(system, running, 'put', settings.warmupSeconds, settings);
  }
  const runs: Measurement[] = [];
  for (const op of ['put', 'get'] as const) {
    if (op === 'get') for (const [system, running] of systems) await populateAndCheck(system, running);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? systems : [...systems].reverse();
      for (const [system, running] of order) {
        const run = await measureRun(system, running, op, op, roundSeconds, settings, notes);
        log(`round ${round + 1} ${system.label} ${op}: ${Math.round(run.reqPerSec)} req/s`);
        runs.push(run);
      }
    }
  }
  return runs;
}

/** The median over rounds of (with a token / without auth) for `op`: runs are in pairs, one pair per round. */
function medianRoundRatio(runs: readonly Measurement[], op: string): number {
  const withToken = runs.filter((r) => r.system === WITH_TOKEN && r.operation === op);
  const without = runs.filter((r) => r.system === WITHOUT_AUTH && r.operation === op);
  const ratios = withToken.map((r, i) => r.reqPerSec / (without[i]?.reqPerSec ?? NaN)).sort((a, b) => a - b);
  const middle = ratios.length / 2;
  return ratios.length % 2 === 1
    ? (ratios[Math.floor(middle)] as number)
    : ((ratios[middle - 1] as number) + (ratios[middle] as number)) / 2;
}

/** One row from the rounds of one system and operation: requests over time summed; latencies and CPU their worst or mean. */
function combine(runs: readonly Measurement[]): Measurement {
  const first = runs[0];
  if (first === undefined) throw new Error('no runs to combine');
  const sum = (pick: (m: Measurement) => number) => runs.reduce((total, m) => total + pick(m), 0);
  const mean = (pick: (m: Measurement) => number | null) => {
    const known = runs.map(pick).filter((v): v is number => v !== null);
    return known.length === 0 ? null : known.reduce((a, b) => a + b, 0) / known.length;
  };
  const requests = sum((m) => m.requests);
  const seconds = sum((m) => m.seconds);
  return {
    system: first.system,
    operation: first.operation,
    requests,
    seconds,
    reqPerSec: requests / seconds,
    p50Ms: mean((m) => m.p50Ms) ?? 0,
    p99Ms: Math.max(...runs.map((m) => m.p99Ms)),
    maxMs: Math.max(...runs.map((m) => m.maxMs)),
    errors: sum((m) => m.errors),
    serverCpuPercent: mean((m) => m.serverCpuPercent),
    machineBusyPercent: mean((m) => m.machineBusyPercent),
  };
}
