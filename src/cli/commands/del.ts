import type { Command } from 'commander';
import { countArgument, prefixArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { validateKey } from '../../core/key-path.js';
import { KeyNotFoundError, MusterError } from '../../core/errors.js';

interface DelFlags {
  prefix?: boolean;
  prevRevision?: number;
}

/** `muster del KEY [--prefix]`: delete a key, or every key under a prefix. */
export function registerDel(program: Command, ctx: CliContext): void {
  program
    .command('del')
    .description('delete a key, or every key under a prefix')
    .argument('<key>', 'the key (or the prefix, with --prefix)', prefixArgument)
    .option('--prefix', 'delete every key starting with KEY (end it with / to mean a folder)')
    .option('--prev-revision <n>', 'delete only if the key is at this modRevision; else exit 1', countArgument)
    .addHelpText(
      'after',
      `
Deleting a single key that does not exist fails with exit 1; a prefix that
matches nothing deletes 0 keys and succeeds.

Examples:
  $ muster del /config/db/host
  $ muster del /config/ --prefix`,
    )
    .action(async (key: string, flags: DelFlags, command: Command) => {
      if (flags.prefix === true && flags.prevRevision !== undefined) {
        throw new UsageError('--prev-revision applies to one key, not to --prefix');
      }
      if (flags.prefix !== true) {
        try {
          validateKey(key);
        } catch (error) {
          if (error instanceof MusterError) throw new UsageError(`${error.message} (to delete a prefix, add --prefix)`);
          throw error;
        }
      }
      const result = await ctx.client(command).delete(key, {
        ...(flags.prefix === true ? { prefix: true } : {}),
        ...(flags.prevRevision !== undefined ? { prevRevision: flags.prevRevision } : {}),
      });
      if (ctx.json(command)) ctx.printJson(result);
      else ctx.print(`deleted ${result.deleted} key${result.deleted === 1 ? '' : 's'} (revision ${result.revision})`);
      if (flags.prefix !== true && result.deleted === 0) throw new KeyNotFoundError(key);
    });
}
