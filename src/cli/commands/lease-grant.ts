import type { Command } from 'commander';
import { ttlArgument } from '../arguments.js';
import type { CliContext } from '../context.js';

/** `muster lease grant TTL`: print a new lease's id. */
export function registerLeaseGrant(lease: Command, ctx: CliContext): void {
  lease
    .command('grant')
    .description('grant a lease and print its id')
    .argument('<ttl>', 'how long it lives without a keepalive: 15s, 2m, or seconds', ttlArgument)
    .addHelpText(
      'after',
      `
Prints only the id, so that scripts can capture it (--json: {"id","ttl"}).

Example:
  $ muster lease grant 15s
  694d77aa9e2a1f05`,
    )
    .action(async (ttl: number, _options: unknown, command: Command) => {
      const grant = await ctx.client(command).grantLease(ttl);
      if (ctx.json(command)) ctx.printJson(grant);
      else ctx.print(grant.id);
    });
}
