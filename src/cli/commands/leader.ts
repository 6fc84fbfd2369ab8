import type { Command } from 'commander';
import type { LeaderInfo } from '../../client/coordination-types.js';
import type { CliContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { untilInterrupted } from '../interrupt.js';
import { nameArgument } from './primitive-options.js';

/** `muster leader NAME [--watch]`: who leads an election. */
export function registerLeader(program: Command, ctx: CliContext): void {
  program
    .command('leader')
    .description("print the current leader's value (exit 1 if there is none); --watch follows every change")
    .argument('<name>', 'the election name', nameArgument)
    .option('--watch', 'print the leader now and at every change, until interrupted')
    .addHelpText(
      'after',
      `
Prints the value the leader published. With --watch, one line per change (an
empty line while there is no leader), in order. With --json: {"key","value",
"token","lease","revision"} or null.

Examples:
  $ muster leader k8s-master
  $ muster leader k8s-master --watch --json`,
    )
    .action(async (name: string, flags: { watch?: boolean }, command: Command) => {
      const client = ctx.client(command);
      const json = ctx.json(command);
      const show = (leader: LeaderInfo | null) =>
        json ? ctx.printJson(leader) : ctx.print(leader ? leader.value : '');
      if (flags.watch !== true) {
        const leader = await client.leader(name);
        if (!leader && !json) {
          ctx.warn(`no leader: nobody leads election ${name}`);
          ctx.exitCode = ExitCode.FAILED;
          return;
        }
        show(leader);
        if (!leader) ctx.exitCode = ExitCode.FAILED;
        return;
      }
      const interrupt = untilInterrupted();
      try {
        for await (const leader of client.observeLeader(name, { signal: interrupt.signal })) show(leader);
      } finally {
        interrupt.dispose();
      }
    });
}
