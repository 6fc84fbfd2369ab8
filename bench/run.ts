/**
 * `npm run bench [-- <scenario>...]`: runs the registered bench scenarios one after
 * another, prints a table per scenario and writes every number to
 * bench/results/latest.json. See docs/bench.md.
 *
 * Exit codes: 0 ran (targets met or not: the table says), 1 a scenario failed,
 * 2 usage error or a required program (wrk, etcd) is missing.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { authCost } from './auth-cost.js';
import { kvThroughput } from './kv-throughput.js';
import { lockHandoff } from './lock-handoff.js';
import { packageRoot } from './paths.js';
import { renderResult } from './report.js';
import type { BenchSettings, Requirement, Scenario, ScenarioResult } from './scenario.js';
import { waiters } from './waiters.js';
import { agents } from './agents.js';
import { simulateBench } from './simulate.js';
import { hooksBench } from './hooks.js';
import { dashboardBench } from './dashboard.js';

/** Every scenario the bench knows, in the order a plain `npm run bench` runs them. New scenarios go here. */
const SCENARIOS: readonly Scenario[] = [
  kvThroughput,
  authCost,
  lockHandoff,
  waiters,
  agents,
  hooksBench,
  simulateBench,
  dashboardBench,
];

const USAGE = `usage: npm run bench [-- [--list] [scenario ...]]

Runs the named scenarios (default: all) one after another.
Environment:
  BENCH_SECONDS          length of each measured run (default 10)
  BENCH_CONNECTIONS      concurrent connections (default 64)
  BENCH_THREADS          wrk threads (default 1)
  BENCH_WARMUP_SECONDS   unrecorded warm-up per system (default 2; 0 for none)
  BENCH_SERVER_NODE_ARGS Node options for the muster server processes (e.g. --cpu-prof --cpu-prof-dir=DIR)
Example (a quick smoke run):
  BENCH_SECONDS=2 BENCH_WARMUP_SECONDS=0 npm run bench`;

class UsageError extends Error {}

/** Read the settings from BENCH_* variables; throws UsageError naming a bad one. */
function settingsFromEnv(env: Readonly<Record<string, string | undefined>>): BenchSettings {
  const read = (name: string, fallback: number, integer: boolean, min: number): number => {
    const text = env[name];
    if (text === undefined || text.trim() === '') return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
      throw new UsageError(
        `${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got ${JSON.stringify(text)}`,
      );
    }
    return value;
  };
  const connections = read('BENCH_CONNECTIONS', 64, true, 1);
  return {
    seconds: read('BENCH_SECONDS', 10, true, 1),
    connections,
    threads: Math.min(read('BENCH_THREADS', 1, true, 1), connections),
    warmupSeconds: read('BENCH_WARMUP_SECONDS', 2, true, 0),
  };
}

function onPath(binary: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$0" >/dev/null', binary]).status === 0;
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  if (argv.includes('--list')) {
    for (const s of SCENARIOS) console.log(`${s.name.padEnd(12)} ${s.title}`);
    return 0;
  }
  const unknown = argv.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(
      `unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}\n\n${USAGE}`,
    );
    return 2;
  }
  const selected = argv.length > 0 ? SCENARIOS.filter((s) => argv.includes(s.name)) : SCENARIOS;

  let settings: BenchSettings;
  try {
    settings = settingsFromEnv(process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n\n${USAGE}`);
    return 2;
  }

  const missing = new Map<string, Requirement>();
  for (const requirement of selected.flatMap((s) => s.requires)) {
    if (!onPath(requirement.binary)) missing.set(requirement.binary, requirement);
  }
  if (missing.size > 0) {
    for (const r of missing.values()) console.error(`bench: \`${r.binary}\` is not on PATH: ${r.installHint}`);
    return 2;
  }

  const startedAt = new Date();
  const load = loadavg();
  console.log(
    `muster bench, ${startedAt.toISOString()}, ${cpus().length} CPUs, load average ${load.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
  const results: { name: string; title: string; result: ScenarioResult }[] = [];
  for (const scenario of selected) {
    log(`scenario ${scenario.name}`);
    let result: ScenarioResult;
    try {
      result = await scenario.run(settings, log);
    } catch (error) {
      console.error(`bench: scenario ${scenario.name} failed:`, error);
      return 1;
    }
    results.push({ name: scenario.name, title: scenario.title, result });
    console.log(`\n${renderResult(scenario, result)}`);
  }

  const file = join(packageRoot(), 'bench', 'results', 'latest.json');
  mkdirSync(join(file, '..'), { recursive: true });
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, loadAverageAtStart: load, node: process.version },
    settings,
    scenarios: results.map(({ name, title, result }) => ({ name, title, ...result })),
  };
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nresults: ${file}`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
