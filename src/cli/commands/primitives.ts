import type { Command } from 'commander';
import { Option } from 'commander';
import { PRIMITIVE_KINDS } from '../../api/wire.js';
import type { WirePrimitiveKind } from '../../api/wire.js';
import type { CliContext } from '../context.js';

/** `muster primitives`: which locks, semaphores, elections, barriers and onces are in use. */
export function registerPrimitives(program: Command, ctx: CliContext): void {
  program
    .command('primitives')
    .description('list the coordination primitives in use (locks, semaphores, elections, barriers, onces)')
    .addOption(new Option('--kind <kind>', 'only this kind').choices([...PRIMITIVE_KINDS]))
    .addHelpText(
      'after',
      `
One line per primitive that has keys now (a holder, a waiter, a candidate, a
result): KIND NAME KEYS. Only the names your token may read are listed. For one
primitive's holders and waiters: muster lock status NAME, muster leader NAME, ...
With --json: {"revision":N,"primitives":[{kind,name,keys}]}.

Examples:
  $ muster primitives
  $ muster primitives --kind lock --json`,
    )
    .action(async (options: { kind?: WirePrimitiveKind }, command: Command) => {
      const list = await ctx.client(command).listPrimitives(options.kind);
      if (ctx.json(command)) {
        ctx.printJson(list);
        return;
      }
      if (list.primitives.length === 0) {
        ctx.print(`no primitive in use (revision ${list.revision})`);
        return;
      }
      const width = Math.max(...list.primitives.map((p) => p.name.length), 4);
      ctx.print(`${'KIND'.padEnd(9)} ${'NAME'.padEnd(width)} KEYS`);
      for (const p of list.primitives) ctx.print(`${p.kind.padEnd(9)} ${p.name.padEnd(width)} ${p.keys}`);
    });
}
