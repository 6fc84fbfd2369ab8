import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { acquireAndHold } from './hold.js';
import type { SessionFlags } from './primitive-options.js';
import { nameArgument, positiveArgument, sessionOptions } from './primitive-options.js';

/** `muster semaphore NAME --limit N [-- cmd]`: at most N nodes at a time. */
export function registerSemaphore(program: Command, ctx: CliContext): void {
  sessionOptions(
    program
      .command('semaphore')
      .description('wait for one of --limit slots, run a command in it, give it back when the command exits')
      .argument('<name>', 'the semaphore name', nameArgument)
      .argument('[command...]', 'the command to run while holding a slot (after --)')
      .requiredOption(
        '--limit <n>',
        'how many may hold it at once (every contender must give the same)',
        positiveArgument,
      ),
  )
    .addHelpText(
      'after',
      `
Like "muster lock" with N holders. Contenders that disagree on --limit get an
error (exit 1) instead of a slot. The command sees MUSTER_SEMAPHORE_TOKEN and
MUSTER_SEMAPHORE_KEY. If the slot is lost, the command is stopped and muster exits 5.

Examples:
  $ muster semaphore web-restart --limit 2 -- systemctl restart app
  $ muster semaphore rebuild --limit 3 --timeout 30m -- ./rebuild-index.sh`,
    )
    .action(async (name: string, argv: string[], flags: SessionFlags & { limit: number }, command: Command) => {
      const client = ctx.client(command);
      ctx.exitCode = await acquireAndHold(ctx, client, flags, {
        what: `semaphore ${name}`,
        argv,
        acquire: (lease, timeoutMs, signal) =>
          client.acquireSemaphore(name, flags.limit, lease, { timeoutMs, ...(signal ? { signal } : {}) }),
        env: (handle, lease) => ({
          MUSTER_SEMAPHORE_TOKEN: String(handle.token),
          MUSTER_SEMAPHORE_KEY: handle.key,
          MUSTER_LEASE: lease,
        }),
        release: (handle) => client.releaseSemaphore(name, handle),
        heldMessage: (handle) =>
          ctx.json(command)
            ? JSON.stringify(handle)
            : `holding a slot of semaphore ${name} (limit ${handle.limit}): token ${handle.token}; Ctrl-C releases it`,
      });
    });
}
