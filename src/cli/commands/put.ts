import type { Command } from 'commander';
import { countArgument, keyArgument, leaseArgument } from '../arguments.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { readAll } from '../io.js';

interface PutFlags {
  lease?: string;
  prevRevision?: number;
}

/** `muster put KEY [VALUE]`: write a value, from the argument or stdin. */
export function registerPut(program: Command, ctx: CliContext): void {
  program
    .command('put')
    .description('write a value (from VALUE, or stdin when VALUE is absent)')
    .argument('<key>', 'the key, such as /config/db/host', keyArgument)
    .argument('[value]', 'the value; read from stdin when absent (bytes kept as they are)')
    .option('--lease <id>', 'bind the key to this lease: it is deleted when the lease ends', leaseArgument)
    .option(
      '--prev-revision <n>',
      'write only if the key is still at this modRevision (0: only if it does not exist); else exit 1',
      countArgument,
    )
    .addHelpText(
      'after',
      `
Prints the key's new modRevision and version (--json: the API's answer).

Examples:
  $ muster put /config/db/host 10.0.0.5
  $ muster put /config/db/host 10.0.0.6 --prev-revision 3   # compare-and-swap
  $ muster put /config/tls/cert < cert.pem
  $ muster put /nodes/a up --lease 694d77aa9e2a1f05`,
    )
    .action(async (key: string, value: string | undefined, flags: PutFlags, command: Command) => {
      let bytes: Uint8Array;
      if (value !== undefined) {
        bytes = Buffer.from(value, 'utf8');
      } else {
        if (ctx.io.stdin.isTTY) {
          throw new UsageError('no VALUE given: pass it as an argument or pipe it on stdin');
        }
        bytes = await readAll(ctx.io.stdin);
      }
      const result = await ctx.client(command).put(key, bytes, {
        ...(flags.lease !== undefined ? { lease: flags.lease } : {}),
        ...(flags.prevRevision !== undefined ? { prevRevision: flags.prevRevision } : {}),
      });
      if (ctx.json(command)) ctx.printJson(result);
      else ctx.print(`${result.key}: modRevision ${result.modRevision}, version ${result.version}`);
    });
}
