import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * What a bench scenario is: a named measurement that starts its own systems, drives
 * them one after another, and reports rows of throughput and latency plus the
 * ratios its issue sets as targets. Scenarios are registered in `run.ts`.
 */

/** Load settings shared by every scenario, from the environment (see `settingsFromEnv`). */
export interface BenchSettings {
  /** Length of each measured run. @default 10 (BENCH_SECONDS) */
  readonly seconds: number;
  /** Concurrent HTTP connections of the load generator. @default 64 (BENCH_CONNECTIONS) */
  readonly connections: number;
  /** wrk threads; one leaves the other core of a 2-core machine to the server. @default 1 (BENCH_THREADS) */
  readonly threads: number;
  /** An unrecorded run before the first measured one of each system (JIT, caches). @default 2 (BENCH_WARMUP_SECONDS) */
  readonly warmupSeconds: number;
}

/** A program a scenario needs on PATH, and how to get it. */
export interface Requirement {
  readonly binary: string;
  readonly installHint: string;
}

/** One measured run: one system, one operation. */
export interface Measurement {
  /** Such as "muster (file)", "muster (memory)", "etcd". */
  readonly system: string;
  /** Such as "put", "get", "range". */
  readonly operation: string;
  readonly requests: number;
  readonly seconds: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Requests that failed: connect, read, write or timeout errors, and non-2xx answers. */
  readonly errors: number;
  /** CPU time of the server process over the run, in % of one core. */
  readonly serverCpuPercent: number | null;
  /** How busy the whole machine was over the run (all cores, load generator included), in %. */
  readonly machineBusyPercent: number | null;
}

/** A ratio the issue names, with its target. */
export interface Ratio {
  readonly name: string;
  readonly value: number;
  readonly target: number;
  /** "at-least": value ≥ target is met; "at-most": value ≤ target is met. */
  readonly direction: 'at-least' | 'at-most';
  readonly met: boolean;
}

export interface ScenarioResult {
  /** One line under the title saying how the load was made (connections, duration, rounds). */
  readonly load: string;
  readonly measurements: readonly Measurement[];
  readonly ratios: readonly Ratio[];
  /** Anything a reader of the numbers should know (errors seen, checks made). */
  readonly notes: readonly string[];
}

export interface Scenario {
  /** Short name used on the command line: `npm run bench -- <name>`. */
  readonly name: string;
  /** One line for `--list` and the report heading. */
  readonly title: string;
  readonly requires: readonly Requirement[];
  run(settings: BenchSettings, log: (line: string) => void): Promise<ScenarioResult>;
}

/** Build a Ratio, deciding whether it meets its target. */
export function ratio(name: string, value: number, target: number, direction: Ratio['direction']): Ratio {
  const met = direction === 'at-least' ? value >= target : value <= target;
  return { name, value, target, direction, met };
}

/** etcd from Debian: every scenario compares muster with it. */
export const ETCD_REQUIREMENT: Requirement = {
  binary: 'etcd',
  installHint: 'install etcd with `apt-get install -y etcd-server` (Debian/Ubuntu)',
};

const TMPFS_MAGIC = 0x01021994;

/**
 * Measure each system one after another, never two at once (they would compete
 * for the machine's two cores). `makeSystems` gets a fresh scratch folder for the
 * systems' data, removed afterwards; a note says so when it is a tmpfs, where
 * fsync costs nothing.
 */
export async function oneAfterAnother<S>(
  makeSystems: (scratch: string) => readonly S[],
  measure: (system: S, notes: string[]) => Promise<readonly Measurement[]>,
): Promise<{ measurements: Measurement[]; notes: string[] }> {
  const scratch = await mkdtemp(join(tmpdir(), 'muster-bench-'));
  const notes: string[] = [];
  const measurements: Measurement[] = [];
  try {
    if ((await statfs(scratch)).type === TMPFS_MAGIC) {
      notes.push(`${tmpdir()} is a tmpfs: fsync costs nothing there, so durable numbers are flattered`);
    }
    for (const system of makeSystems(scratch)) measurements.push(...(await measure(system, notes)));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return { measurements, notes };
}

/**
 * A scenario of two systems, muster (file) and etcd, measured one after another
 * with one row each, and the one ratio its issue sets between them.
 */
export async function musterThenEtcd<S>(options: {
  readonly load: string;
  readonly systems: (scratch: string) => readonly [S, S];
  readonly measure: (system: S, notes: string[]) => Promise<Measurement>;
  readonly ratio: (muster: Measurement, etcd: Measurement) => Ratio;
}): Promise<ScenarioResult> {
  const { measurements, notes } = await oneAfterAnother(options.systems, async (system, notes) => [
    await options.measure(system, notes),
  ]);
  const [muster, etcd] = measurements;
  if (muster === undefined || etcd === undefined) throw new Error('a system has no measurement');
  return { load: options.load, measurements, ratios: [options.ratio(muster, etcd)], notes };
}
