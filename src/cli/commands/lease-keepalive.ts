import type { Command } from 'commander';
import { Session } from '../../client/session.js';
import { leaseArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import { aborted, untilInterrupted } from '../interrupt.js';

interface KeepaliveFlags {
  once?: boolean;
}

/** `muster lease keepalive ID`: keep a lease alive until interrupted (or once). */
export function registerLeaseKeepalive(lease: Command, ctx: CliContext): void {
  lease
    .command('keepalive')
    .description('keep a lease alive until interrupted, printing nothing unless it is lost')
    .argument('<id>', 'the lease id', leaseArgument)
    .option('--once', 'renew it once, print its TTL, and exit')
    .addHelpText(
      'after',
      `
Renews every TTL/3. Stops with exit 1 if the lease is found gone, or exit 4 if
no renewal reached the server for a whole TTL. Interrupting it (Ctrl-C) leaves
the lease to expire after its TTL; use "muster lease revoke" to end it at once.

Examples:
  $ muster lease keepalive 694d77aa9e2a1f05 &
  $ muster lease keepalive 694d77aa9e2a1f05 --once`,
    )
    .action(async (id: string, flags: KeepaliveFlags, command: Command) => {
      const client = ctx.client(command);
      if (flags.once === true) {
        const grant = await client.keepAlive(id);
        if (ctx.json(command)) ctx.printJson(grant);
        else ctx.print(`lease ${grant.id} renewed for ${grant.ttl}s`);
        return;
      }
      const interrupt = untilInterrupted();
      try {
        const session = await Session.attach(client, id);
        await Promise.race([aborted(interrupt.signal), aborted(session.lost)]);
        session.stop();
        if (session.lostReason !== null) throw session.lostReason;
      } finally {
        interrupt.dispose();
      }
    });
}
