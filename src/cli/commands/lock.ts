import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { acquireAndHold } from './hold.js';
import type { SessionFlags } from './primitive-options.js';
import { durationArgument, nameArgument, sessionOptions } from './primitive-options.js';

/** `muster lock NAME [-- cmd]`: run a command while holding a lock (one node at a time). */
export function registerLock(program: Command, ctx: CliContext): void {
  sessionOptions(
    program
      .command('lock')
      .description('wait for a lock, run a command while holding it, release it when the command exits')
      .argument('<name>', 'the lock name', nameArgument)
      .argument('[command...]', 'the command to run while holding the lock (after --)'),
  )
    .option(
      '--lock-delay <duration>',
      'if our session is lost while we hold the lock (rather than releasing it), nobody gets the lock for this long (default 0, at most 1h)',
      durationArgument,
    )
    .addHelpText(
      'after',
      `
Waits its turn (first come, first served), runs the command with
MUSTER_LOCK_TOKEN (the fencing token, strictly increasing from holder to holder)
and MUSTER_LOCK_KEY in its environment, releases the lock when it exits, and
exits with its code. If the lock is lost (the session expired, or the server was
unreachable for longer than --ttl, or muster can no longer tell), the command gets
SIGTERM at once and SIGKILL after --grace, and muster exits 5. The command runs in a
process group of its own: loss, SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to muster and
the SIGKILL reach everything it started, and a background job it leaves behind is
stopped before the lock is released. Without a command, it prints the token and
holds the lock until interrupted.

Examples:
  $ muster lock db-migrate -- ./migrate.sh
  $ muster lock db-migrate --ttl 30s --timeout 10m -- rake db:migrate
  $ muster lock maintenance            # hold it until Ctrl-C
  $ muster lock deploy --lock-delay 15s -- ./deploy.sh
                                       # cut off from the server, this holder's
                                       # command has 15 s more to stop before the
                                       # next holder starts`,
    )
    .action(async (name: string, argv: string[], flags: SessionFlags & { lockDelay?: number }, command: Command) => {
      const client = ctx.client(command);
      ctx.exitCode = await acquireAndHold(ctx, client, flags, {
        what: `lock ${name}`,
        argv,
        acquire: (lease, timeoutMs, signal) =>
          client.acquireLock(name, lease, {
            timeoutMs,
            ...(flags.lockDelay ? { lockDelayMs: flags.lockDelay } : {}),
            ...(signal ? { signal } : {}),
          }),
        env: (handle, lease) => ({
          MUSTER_LOCK_TOKEN: String(handle.token),
          MUSTER_LOCK_KEY: handle.key,
          MUSTER_LEASE: lease,
        }),
        release: (handle) => client.releaseLock(name, handle),
        heldMessage: (handle) =>
          ctx.json(command)
            ? JSON.stringify(handle)
            : `holding lock ${name}: token ${handle.token} (key ${handle.key}); Ctrl-C releases it`,
      });
    });
}
