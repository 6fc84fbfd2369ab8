import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `muster lease ls`: the ids of the live leases. */
export function registerLeaseLs(lease: Command, ctx: CliContext): void {
  lease
    .command('ls')
    .description('list the live leases, one id per line')
    .addHelpText('after', '\nWith --json: {"leases":[ids]}.\n\nExample:\n  $ muster lease ls')
    .action(async (_options: unknown, command: Command) => {
      const leases = await ctx.client(command).listLeases();
      if (ctx.json(command)) ctx.printJson({ leases });
      else for (const id of leases) ctx.print(id);
    });
}
