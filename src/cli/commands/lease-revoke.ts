import type { Command } from 'commander';
import { leaseArgument } from '../arguments.js';
import type { CliContext } from '../context.js';

/** `muster lease revoke ID`: end a lease now, deleting its keys. */
export function registerLeaseRevoke(lease: Command, ctx: CliContext): void {
  lease
    .command('revoke')
    .description('end a lease now; the keys bound to it are deleted')
    .argument('<id>', 'the lease id', leaseArgument)
    .addHelpText('after', '\nExample:\n  $ muster lease revoke 694d77aa9e2a1f05')
    .action(async (id: string, _options: unknown, command: Command) => {
      await ctx.client(command).revokeLease(id);
      if (ctx.json(command)) ctx.printJson({ revoked: true, id });
      else ctx.print(`lease ${id} revoked`);
    });
}
