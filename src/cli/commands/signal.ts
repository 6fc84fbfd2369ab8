import type { Command } from 'commander';
import { keyArgument, leaseArgument } from '../arguments.js';
import type { CliContext } from '../context.js';

/** `muster signal KEY [VALUE]`: raise a flag that `muster wait` is waiting for. */
export function registerSignal(program: Command, ctx: CliContext): void {
  program
    .command('signal')
    .description('write a flag (a key, "1" unless a value is given) for "muster wait" on other nodes')
    .argument('<key>', 'the flag key', keyArgument)
    .argument('[value]', 'the value to write', '1')
    .option('--lease <id>', 'bind the flag to a lease, so it vanishes when the lease ends', leaseArgument)
    .addHelpText(
      'after',
      `
Examples:
  $ muster signal /ephemerals/db/ready ready
  $ muster wait /ephemerals/db/ready --equals ready     # on the other nodes`,
    )
    .action(async (key: string, value: string, flags: { lease?: string }, command: Command) => {
      const result = await ctx.client(command).put(key, value, flags.lease ? { lease: flags.lease } : {});
      if (ctx.json(command)) ctx.printJson(result);
      else ctx.print(`signalled ${key} = ${JSON.stringify(value)} (revision ${result.revision})`);
    });
}
