import type { Command } from 'commander';
import { countArgument, prefixArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import { eventJson, formatEvent } from '../format.js';
import { untilInterrupted } from '../interrupt.js';
import { validateKey } from '../../core/key-path.js';
import { MusterError } from '../../core/errors.js';
import { UsageError } from '../exit-codes.js';

interface WatchFlags {
  fromRevision?: number;
  key?: boolean;
}

/** `muster watch PREFIX`: print every change, one line each, until interrupted. */
export function registerWatch(program: Command, ctx: CliContext): void {
  program
    .command('watch')
    .description('print every change under a prefix, one line each, until interrupted')
    .argument('<prefix>', 'the prefix to watch (or the key, with --key)', prefixArgument)
    .option('--from-revision <n>', 'replay history from this revision first, then follow live', countArgument)
    .option('--key', 'watch exactly this key, not everything under it')
    .addHelpText(
      'after',
      `
Without --from-revision only changes from now on are shown. A lost connection
is retried (reported on stderr) and resumes after the last revision printed:
nothing is missed or shown twice. If that history has been compacted, the watch
ends with exit 1 and says the oldest revision still available.
With --json: one JSON object per line {"type","revision","key","value",...}.

Examples:
  $ muster watch /config/ --from-revision 1
  $ muster watch /nodes/ --json | jq .key
  $ muster watch /config/db/host --key`,
    )
    .action(async (prefix: string, flags: WatchFlags, command: Command) => {
      if (flags.key === true) {
        try {
          validateKey(prefix);
        } catch (error) {
          if (error instanceof MusterError) throw new UsageError(error.message);
          throw error;
        }
      }
      const json = ctx.json(command);
      const interrupt = untilInterrupted();
      // A server that is not there at all is an error (exit 4); one that goes away later is waited for.
      const stop = new AbortController();
      let connected = false;
      let neverConnected: Error | null = null;
      let reported = false;
      try {
        const events = ctx.client(command).watch(prefix, {
          prefix: flags.key !== true,
          signal: AbortSignal.any([interrupt.signal, stop.signal]),
          ...(flags.fromRevision !== undefined ? { fromRevision: flags.fromRevision } : {}),
          onStatus: (status) => {
            if (status.type === 'connected') connected = true;
            if (status.type === 'disconnected' && !connected) {
              neverConnected = status.error;
              stop.abort();
            } else if (status.type === 'disconnected' && !reported) {
              reported = true;
              ctx.warn(`watch: ${status.error.message}; retrying`);
            } else if (status.type === 'connected' && reported) {
              reported = false;
              ctx.warn(`watch: reconnected to ${status.endpoint}, resuming at revision ${status.fromRevision}`);
            }
          },
        });
        for await (const event of events) {
          if (json) ctx.printJson(eventJson(event));
          else ctx.print(formatEvent(event));
        }
        if (neverConnected !== null) throw neverConnected;
      } finally {
        interrupt.dispose();
      }
    });
}
