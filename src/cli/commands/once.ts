import type { Command } from 'commander';
import type { OnceResult } from '../../client/coordination-types.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { lostSignal, runChild } from '../supervise.js';
import type { SessionFlags } from './primitive-options.js';
import {
  DEFAULT_GRACE_MS,
  nameArgument,
  sessionOptions,
  startSession,
  thisHost,
  untilDone,
} from './primitive-options.js';

/** Output kept for the others, from the end (the server keeps the same). */
const OUTPUT_TAIL = 64 * 1024;

interface OnceFlags extends SessionFlags {
  showOutput?: boolean;
  reset?: boolean;
  status?: boolean;
}

/** `muster once NAME -- cmd`: exactly one caller runs it; the others get its result. */
export function registerOnce(program: Command, ctx: CliContext): void {
  sessionOptions(
    program
      .command('once')
      .description('run a command exactly once across the cluster; every other caller waits and exits with its code')
      .argument('<name>', 'the name of this once (say, the migration)', nameArgument)
      .argument('[command...]', 'the command (after --)')
      .option('--show-output', "print the tail of the run's output (for the callers that did not run it)")
      .option('--reset', 'forget the recorded result, so that the next caller runs the command again')
      .option('--status', 'print the state (idle, running, done) and the result, and exit'),
  )
    .addHelpText(
      'after',
      `
The first caller runs the command (with MUSTER_ONCE_TOKEN in its environment);
every other caller, now or later, waits for it and exits with its exit code.
If the runner dies before finishing, one waiter takes over and runs it. A failed
run is recorded too: clear it with --reset to try again. If the runner's session
is lost while the command runs, the command is stopped and muster exits 5
without recording a result (another caller will run it).

Examples:
  $ muster once schema-v42 -- ./migrate.sh
  $ muster once schema-v42 --show-output -- ./migrate.sh
  $ muster once schema-v42 --status
  $ muster once schema-v42 --reset`,
    )
    .action(async (name: string, argv: string[], flags: OnceFlags, command: Command) => {
      const client = ctx.client(command);
      const json = ctx.json(command);
      if (flags.reset === true) {
        const reset = await client.resetOnce(name);
        if (json) ctx.printJson({ reset });
        else
          ctx.print(
            reset ? `once ${name}: result forgotten; the next caller runs it` : `once ${name}: no result to forget`,
          );
        return;
      }
      if (flags.status === true) {
        const status = await client.onceStatus(name);
        if (json) ctx.printJson(status);
        else {
          ctx.print(`once ${name}: ${status.state}${status.waiting > 0 ? ` (${status.waiting} waiting)` : ''}`);
          if (status.result) ctx.print(describe(status.result));
        }
        return;
      }
      if (argv.length === 0)
        throw new UsageError('give the command to run after --, e.g. muster once schema-v42 -- ./migrate.sh');
      const session = await startSession(client, flags);
      try {
        const turn = await untilDone(session, flags.timeout, (timeoutMs, signal) =>
          client.beginOnce(name, session.leaseId, { timeoutMs, ...(signal ? { signal } : {}) }),
        );
        if (turn.role === 'done') {
          if (flags.showOutput === true && turn.result.output) ctx.io.stdout.write(turn.result.output);
          if (json) ctx.printJson(turn.result);
          else ctx.warn(`muster: once ${name} already ran: ${describe(turn.result)}`);
          ctx.exitCode = turn.result.exitCode;
          return;
        }
        const lost = lostSignal(client, session, turn.key, turn.token, `once ${name}`);
        try {
          const outcome = await runChild({
            argv,
            env: { MUSTER_ONCE_TOKEN: String(turn.token), MUSTER_LEASE: session.leaseId },
            lost: lost.signal,
            graceMs: flags.grace ?? DEFAULT_GRACE_MS,
            io: ctx.io,
            captureTail: OUTPUT_TAIL,
          });
          if (outcome.lost) throw outcome.lost;
          lost.dispose();
          const result = await client.completeOnce(name, turn, {
            exitCode: Math.min(255, outcome.exitCode),
            output: outcome.output,
            runner: thisHost(),
          });
          if (json) ctx.printJson(result);
          ctx.exitCode = result.exitCode;
        } finally {
          lost.dispose();
        }
      } finally {
        await session.close().catch(() => undefined);
      }
    });
}

function describe(result: OnceResult): string {
  return `exit ${result.exitCode}, run by ${result.runner}, finished ${result.finishedAt}`;
}
