import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitCode, UsageError } from '../exit-codes.js';

interface SimulateFlags {
  nodes?: string;
  seed?: string;
  faults?: string;
  timeline?: boolean;
  list?: boolean;
}

function positiveInteger(text: string | undefined, option: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || !Number.isSafeInteger(Number(text)))
    throw new UsageError(`${option} must be an integer ≥ ${min}, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** `muster simulate SCENARIO|FILE`: run a scenario on simulated nodes against an in-process muster. */
export function registerSimulate(program: Command, ctx: CliContext): void {
  program
    .command('simulate')
    .description(
      'run a scenario on N simulated nodes against an in-process muster (no server needed); exits 6 on a violated invariant',
    )
    .argument('[scenario]', 'a built-in scenario (see --list) or a scenario file (YAML or JSON)')
    .option('--nodes <n>', "how many simulated nodes (default: the scenario's nodes)")
    .option('--seed <n>', 'the seed: the same seed gives the same run (default 1)')
    .option('--faults <list>', 'faults to inject, e.g. crash=5%,delay=0-3s,partition=2% (default none)')
    .option('--timeline', 'print every event (virtual time, node, what happened) before the summary')
    .option('--list', 'list the built-in scenarios and exit')
    .addHelpText(
      'after',
      `
Runs the scenario against a real muster server in this process (in-memory
store, virtual clock, seeded randomness), so a 30-minute scenario takes seconds.
Nodes start in random order, may crash and return (--faults), and the run is
checked against the invariants: one leader per election at any revision, a
lock never held by two live sessions, a once-command run exactly once per
success, a barrier released only with its count of arrivals. A release
scenario (rolling-release, or a file with plan:) runs a plan on the server's
plan runner against simulated agents running chef-client, and checks that
every node up at the end is in its group's desired state, that no rolling
batch is larger than allowed, and that no step starts before the steps it
follows. See docs/simulate.md.

Examples:
  $ muster simulate --list
  $ muster simulate kubeadm --nodes 100 --faults crash=5%
  $ muster simulate noah-stack --seed 7 --faults crash=5%,delay=0-3s,partition=2% --timeline
  $ muster simulate rolling-release --nodes 100 --seed 1 --faults crash=5%
  $ muster simulate ./my-scenario.yaml --nodes 20 --json

Exit codes: 0 every invariant held and every node finished, 6 a violation (or
nodes left unfinished), 2 a bad scenario or option.`,
    )
    .action(async (name: string | undefined, flags: SimulateFlags, command: Command) => {
      // Loaded here so that other commands do not load the server.
      const { BUILTIN_SCENARIOS, loadScenario } = await import('../../sim/builtin-scenarios.js');
      const json = ctx.json(command);
      if (flags.list === true) {
        const list = [];
        for (const builtin of BUILTIN_SCENARIOS) {
          const scenario = await loadScenario(builtin);
          list.push({ name: builtin, nodes: scenario.nodes, description: scenario.description });
        }
        if (json) ctx.printJson(list);
        else
          for (const s of list)
            ctx.print(`${s.name.padEnd(16)} ${String(s.nodes).padStart(3)} nodes  ${s.description}`);
        return;
      }
      if (name === undefined) throw new UsageError('name a scenario (a built-in, see --list, or a file)');
      const nodes = positiveInteger(flags.nodes, '--nodes', 1);
      const seed = positiveInteger(flags.seed, '--seed', 0);
      const { parseFaults } = await import('../../sim/faults.js');
      const faults = parseFaults(flags.faults ?? '');
      const scenario = await loadScenario(name);
      const { simulate } = await import('../../sim/simulation.js');
      const { formatSummary, formatTimeline } = await import('../../sim/report.js');
      const result = await simulate(scenario, { nodes, seed, faults });
      const failed = result.violations.length > 0 || result.summary.outcome !== 'done';
      if (json)
        ctx.printJson(flags.timeline === true ? result : { summary: result.summary, violations: result.violations });
      else {
        if (flags.timeline === true) ctx.io.stdout.write(formatTimeline(result));
        ctx.io.stdout.write(formatSummary(result));
      }
      if (failed) ctx.exitCode = ExitCode.VIOLATION;
    });
}
