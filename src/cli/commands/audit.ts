import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `muster audit`: who did what, when, and how it ended. */
export function registerAudit(program: Command, ctx: CliContext): void {
  program
    .command('audit')
    .description('show the audit log: writes, primitive actions, lease and token changes (oldest first)')
    .option('--since <when>', 'only records since a duration ago (1h, 30m) or an ISO time')
    .option('--token <id>', 'only records of this token id')
    .option('--limit <n>', 'the newest N records (default 1000)')
    .addHelpText(
      'after',
      `
Needs an admin token (or audit:read). One line per write, primitive action,
lease or token change that was carried out (refusals are in the server's log):
  TIME  TOKEN-ID ROLE  METHOD ROUTE TARGET  STATUS
With --json: {"records":[{at,tokenId,role,method,route,target,status}]}.

Examples:
  $ muster audit --since 1h
  $ muster audit --token 3f9a1c2b7d40 --json`,
    )
    .action(async (options: { since?: string; token?: string; limit?: string }, command: Command) => {
      const records = await ctx.client(command).audit({
        ...(options.since !== undefined ? { since: options.since } : {}),
        ...(options.token !== undefined ? { token: options.token } : {}),
        ...(options.limit !== undefined ? { limit: Number(options.limit) } : {}),
      });
      if (ctx.json(command)) ctx.printJson({ records });
      else {
        for (const r of records) {
          ctx.print(`${r.at}  ${r.tokenId} ${r.role}  ${r.method} ${r.route} ${r.target}  ${r.status}`);
        }
      }
    });
}
