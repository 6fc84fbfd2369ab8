import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { registerLeaseGrant } from './lease-grant.js';
import { registerLeaseKeepalive } from './lease-keepalive.js';
import { registerLeaseLs } from './lease-ls.js';
import { registerLeaseRevoke } from './lease-revoke.js';
import { registerLeaseShow } from './lease-show.js';

/** `muster lease grant|keepalive|revoke|show|ls`. */
export function registerLease(program: Command, ctx: CliContext): void {
  const lease = program
    .command('lease')
    .description('grant, keep alive, revoke and inspect leases (keys bound to a lease vanish when it ends)')
    .addHelpText(
      'after',
      `
Example:
  $ id=$(muster lease grant 15s)
  $ muster put /nodes/a up --lease "$id"
  $ muster lease keepalive "$id"     # until Ctrl-C; then /nodes/a vanishes 15s later`,
    );
  registerLeaseGrant(lease, ctx);
  registerLeaseKeepalive(lease, ctx);
  registerLeaseRevoke(lease, ctx);
  registerLeaseShow(lease, ctx);
  registerLeaseLs(lease, ctx);
}
