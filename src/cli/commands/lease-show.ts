import type { Command } from 'commander';
import { leaseArgument } from '../arguments.js';
import type { CliContext } from '../context.js';

/** `muster lease show ID`: a lease's remaining TTL and keys. */
export function registerLeaseShow(lease: Command, ctx: CliContext): void {
  lease
    .command('show')
    .description("show a lease's remaining time and the keys bound to it")
    .argument('<id>', 'the lease id', leaseArgument)
    .addHelpText(
      'after',
      `
With --json: {"id","ttl","grantedTtl","keys"}.

Example:
  $ muster lease show 694d77aa9e2a1f05`,
    )
    .action(async (id: string, _options: unknown, command: Command) => {
      const info = await ctx.client(command).leaseInfo(id);
      if (ctx.json(command)) {
        ctx.printJson(info);
        return;
      }
      ctx.print(`lease ${info.id}: ${info.ttl}s left of ${info.grantedTtl}s`);
      if (info.keys.length === 0) ctx.print('no keys');
      else for (const key of info.keys) ctx.print(`  ${key}`);
    });
}
