import type { Command } from 'commander';
import { countArgument, prefixArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import { displayValue, formatTable } from '../format.js';
import { fromWireKeyValue } from '../../api/values.js';

interface LsFlags {
  limit?: number;
  revision?: number;
  keysOnly?: boolean;
}

/** `muster ls PREFIX`: the keys under a prefix as a table (`--json` for scripts). */
export function registerLs(program: Command, ctx: CliContext): void {
  program
    .command('ls')
    .description('list the keys under a prefix')
    .argument('[prefix]', 'the prefix; end it with / to mean a folder', prefixArgument, '/')
    .option('--limit <n>', 'show at most N keys (0: all)', countArgument)
    .option('--revision <n>', 'as of this past revision', countArgument)
    .option('--keys-only', 'leave values out')
    .addHelpText(
      'after',
      `
Columns: KEY, VALUE (shortened), MOD-REV, VERSION, LEASE. With --json the API's
answer: {"revision","kvs":[...],"more","count"}.

Examples:
  $ muster ls /config/
  $ muster ls /config/ --json --limit 100
  $ muster ls / --revision 42`,
    )
    .action(async (prefix: string, flags: LsFlags, command: Command) => {
      const range = await ctx.client(command).listWire(prefix, {
        ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
        ...(flags.revision !== undefined ? { revision: flags.revision } : {}),
        ...(flags.keysOnly === true ? { keysOnly: true } : {}),
      });
      if (ctx.json(command)) {
        ctx.printJson(range);
        return;
      }
      if (range.kvs.length === 0) {
        ctx.print(`no keys under ${prefix} (revision ${range.revision})`);
        return;
      }
      const rows = range.kvs.map((wire) => {
        const kv = fromWireKeyValue(wire);
        return [
          kv.key,
          flags.keysOnly === true ? '' : displayValue(kv.value),
          String(kv.modRevision),
          String(kv.version),
          kv.lease ?? '-',
        ];
      });
      ctx.print(formatTable([['KEY', 'VALUE', 'MOD-REV', 'VERSION', 'LEASE'], ...rows]));
      if (range.more) ctx.print(`… ${range.count - range.kvs.length} more (raise --limit to see them)`);
    });
}
