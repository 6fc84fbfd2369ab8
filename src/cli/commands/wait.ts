import type { Command } from 'commander';
import type { WaitCondition } from '../../client/coordination-types.js';
import { keyArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { durationArgument, untilDone } from './primitive-options.js';

/** One request waits at most this long; longer waits are made of several (a silent connection may be cut). */
const CHUNK_MS = 5 * 60_000;

interface WaitFlags {
  exists?: boolean;
  deleted?: boolean;
  equals?: string;
  matches?: string;
  timeout?: number;
}

/** `muster wait KEY --equals V`: block until a key is as wanted (Noah's noah_block). */
export function registerWait(program: Command, ctx: CliContext): void {
  program
    .command('wait')
    .description('block until a key exists, is deleted, equals a value or matches a pattern; exit 3 on timeout')
    .argument('<key>', 'the key to wait on', keyArgument)
    .option('--exists', 'until the key exists (the default)')
    .option('--deleted', 'until the key does not exist')
    .option('--equals <value>', 'until the value is exactly this')
    .option(
      '--matches <regex>',
      'until the value matches this regular expression (RE2 syntax: no backreferences or lookaround; anchor with ^ and $)',
    )
    .option(
      '--timeout <duration>',
      'give up after this long (exit 3); default: wait as long as it takes',
      durationArgument,
    )
    .addHelpText(
      'after',
      `
Prints the value when the condition holds (nothing for --deleted) and exits 0;
exits 3 when --timeout passes first. Pair it with "muster signal".

Examples:
  $ muster wait /ephemerals/db/ready --equals ready --timeout 600s
  $ muster wait /nodes/db1 --deleted
  $ muster wait /config/version --matches '^v4[.]'`,
    )
    .action(async (key: string, flags: WaitFlags, command: Command) => {
      const given = [flags.exists, flags.deleted, flags.equals, flags.matches].filter((f) => f !== undefined).length;
      if (given > 1) throw new UsageError('give one of --exists, --deleted, --equals, --matches');
      const condition: WaitCondition =
        flags.equals !== undefined
          ? { equals: flags.equals }
          : flags.matches !== undefined
            ? { matches: flags.matches }
            : flags.deleted === true
              ? { deleted: true }
              : { exists: true };
      const client = ctx.client(command);
      const deadline = flags.timeout === undefined ? Infinity : Date.now() + flags.timeout;
      const outcome = await untilDone(null, flags.timeout, async (timeoutMs) => {
        for (;;) {
          const left = Math.min(timeoutMs, CHUNK_MS, deadline - Date.now());
          try {
            return await client.waitFor(key, condition, { timeoutMs: Math.max(1, left) });
          } catch (error) {
            if (left === CHUNK_MS && deadline - Date.now() > 0 && (error as { code?: string }).code === 'timeout')
              continue;
            throw error;
          }
        }
      });
      if (ctx.json(command)) ctx.printJson(outcome);
      else if (outcome.value !== null) ctx.print(outcome.value);
    });
}
