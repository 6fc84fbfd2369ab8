import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatTable } from '../format.js';
import { jobOptions, jobRequest } from './run-job.js';
import type { RunFlags } from './run-job.js';

/** `muster trigger add|list|show|rm`: a change under a prefix starts a job. */
export function registerTrigger(program: Command, ctx: CliContext): void {
  const trigger = program
    .command('trigger')
    .description('start a job when something changes under a prefix (the "pokeable chef-client")')
    .addHelpText(
      'after',
      `
Examples:
  $ muster trigger add converge-lb --on /ephemerals/backends/ --run 'role:lb' chef-client --debounce 10s
  $ muster trigger list
  $ muster trigger show converge-lb
  $ muster trigger rm converge-lb`,
    );
  jobOptions(
    trigger
      .command('add')
      .description('add (or replace) a trigger')
      .argument('<name>', 'the trigger name')
      .argument('<command>', "the command's name in the agents' allowlist")
      .argument('[args...]', 'extra arguments for it')
      .requiredOption('--on <prefix>', 'the prefix whose changes start the job, such as /ephemerals/backends/')
      .requiredOption('--run <query>', "the nodes to run it on, such as 'role:lb'")
      .option('--debounce <duration>', 'changes this close together start one run (default 10s)'),
  )
    .addHelpText(
      'after',
      `
A change under --on opens a window of --debounce; when it closes, one job starts
(every change in the window is covered by it). While that job runs, more changes
queue exactly one more run, started when it ends. Needs the jobs:run capability.

Example:
  $ muster trigger add converge-lb --on /ephemerals/backends/ --run 'role:lb' chef-client --debounce 10s --concurrency 2`,
    )
    .action(
      async (
        name: string,
        command: string,
        args: string[],
        flags: { on: string; run: string; debounce?: string } & RunFlags,
        cmd: Command,
      ) => {
        const record = await ctx.client(cmd).addTrigger({
          name,
          on: flags.on,
          ...(flags.debounce !== undefined ? { debounce: flags.debounce } : {}),
          job: jobRequest(flags.run, command, args, flags),
        });
        if (ctx.json(cmd)) ctx.printJson(record);
        else ctx.print(`trigger ${record.name}: a change under ${record.on} runs ${command} on ${flags.run}`);
      },
    );
  trigger
    .command('list')
    .description('every trigger')
    .addHelpText('after', '\nExample:\n  $ muster trigger list --json')
    .action(async (_options: unknown, cmd: Command) => {
      const triggers = await ctx.client(cmd).listTriggers();
      if (ctx.json(cmd)) {
        ctx.printJson({ triggers });
        return;
      }
      if (triggers.length === 0) {
        ctx.warn('no triggers');
        return;
      }
      ctx.print(
        formatTable([
          ['NAME', 'ON', 'DEBOUNCE', 'QUERY', 'COMMAND'],
          ...triggers.map((t) => [
            t.name,
            t.on,
            `${t.debounceMs / 1000}s`,
            t.job.query,
            [t.job.command, ...(t.job.args ?? [])].join(' '),
          ]),
        ]),
      );
    });
  trigger
    .command('show')
    .description('a trigger and the jobs it started (newest last)')
    .argument('<name>', 'the trigger name')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const record = await ctx.client(cmd).getTrigger(name);
      if (ctx.json(cmd)) ctx.printJson(record);
      else {
        ctx.print(`trigger ${record.name}: on ${record.on}, debounce ${record.debounceMs / 1000}s`);
        ctx.print(`runs ${[record.job.command, ...(record.job.args ?? [])].join(' ')} on ${record.job.query}`);
        ctx.print(`jobs: ${(record.jobs ?? []).join(' ') || 'none yet'}`);
      }
    });
  trigger
    .command('rm')
    .description('remove a trigger (jobs it started go on)')
    .argument('<name>', 'the trigger name')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      await ctx.client(cmd).removeTrigger(name);
      if (ctx.json(cmd)) ctx.printJson({ removed: true });
      else ctx.print(`trigger ${name} removed`);
    });
}
