import type { Command } from 'commander';
import { keyArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import { keyValueJson } from '../format.js';

/** `muster get KEY`: print a key's value (`--json`: with its metadata). */
export function registerGet(program: Command, ctx: CliContext): void {
  program
    .command('get')
    .description("print a key's value")
    .argument('<key>', 'the key, such as /config/db/host', keyArgument)
    .addHelpText(
      'after',
      `
The value is printed as stored, followed by a newline unless it ends with one.
With --json: {"key","value","encoding"?,"createRevision","modRevision","version","lease","revision"}
(binary values come base64-encoded with "encoding":"base64").

Examples:
  $ muster get /config/db/host
  10.0.0.5
  $ muster get /config/db/host --json`,
    )
    .action(async (key: string, _options: unknown, command: Command) => {
      const kv = await ctx.client(command).get(key);
      if (ctx.json(command)) {
        ctx.printJson(keyValueJson(kv, kv.revision));
        return;
      }
      ctx.io.stdout.write(kv.value);
      if (kv.value.length === 0 || kv.value[kv.value.length - 1] !== 0x0a) ctx.io.stdout.write('\n');
    });
}
