import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatTable } from '../format.js';
import { jobDetails } from './job-format.js';

/** `muster jobs`: the jobs, newest first. */
export function registerJobs(program: Command, ctx: CliContext): void {
  program
    .command('jobs')
    .description('list jobs, newest first')
    .option(
      '--state <state>',
      'only jobs in this state: voting, running, complete, failed, quorum_failed, aborted, timed_out',
    )
    .option('--limit <n>', 'at most this many (default 100)')
    .addHelpText(
      'after',
      `
One line per job: ID STATE DONE/NODES COMMAND QUERY CREATED. A node token sees
only the jobs it has a part in.

Examples:
  $ muster jobs
  $ muster jobs --state running --json`,
    )
    .action(async (options: { state?: string; limit?: string }, command: Command) => {
      const jobs = await ctx.client(command).listJobs({
        ...(options.state !== undefined ? { state: options.state } : {}),
        ...(options.limit !== undefined ? { limit: Number(options.limit) } : {}),
      });
      if (ctx.json(command)) {
        ctx.printJson({ jobs });
        return;
      }
      if (jobs.length === 0) {
        ctx.warn('no jobs');
        return;
      }
      ctx.print(
        formatTable([
          ['ID', 'STATE', 'DONE', 'COMMAND', 'QUERY', 'CREATED'],
          ...jobs.map((j) => [
            j.id,
            j.state,
            `${j.counts.succeeded ?? 0}/${j.nodes.length}`,
            [j.command, ...j.args].join(' '),
            j.query,
            j.createdAt,
          ]),
        ]),
      );
    });
}

/** `muster job show|output|abort ID`. */
export function registerJob(program: Command, ctx: CliContext): void {
  const job = program
    .command('job')
    .description('show a job, print its output, or abort it')
    .addHelpText(
      'after',
      `
Examples:
  $ muster job show 0mhq3x1k2-4f9a0c
  $ muster job output 0mhq3x1k2-4f9a0c --node web-3
  $ muster job abort 0mhq3x1k2-4f9a0c`,
    );
  job
    .command('show')
    .description("a job's settings, state and every node's part")
    .argument('<id>', 'the job id (muster jobs lists them)')
    .addHelpText('after', '\nExample:\n  $ muster job show 0mhq3x1k2-4f9a0c --json')
    .action(async (id: string, _options: unknown, command: Command) => {
      const view = await ctx.client(command).getJob(id);
      if (ctx.json(command)) ctx.printJson(view);
      else ctx.print(jobDetails(view));
    });
  job
    .command('output')
    .description("a job's output: one node's, or every node's prefixed by its name")
    .argument('<id>', 'the job id')
    .option('--node <name>', "only this node's output, as it was written")
    .addHelpText(
      'after',
      `
The server keeps the last 1 MiB per node by default (--job-output-limit); when
older output was dropped, a line on stderr says so.

Examples:
  $ muster job output 0mhq3x1k2-4f9a0c
  $ muster job output 0mhq3x1k2-4f9a0c --node web-3 > web-3.log`,
    )
    .action(async (id: string, options: { node?: string }, command: Command) => {
      const client = ctx.client(command);
      const nodes = options.node !== undefined ? [options.node] : (await client.getJob(id)).nodes;
      for (const node of nodes) {
        const output = await client.jobOutput(id, node);
        if (ctx.json(command)) {
          ctx.printJson(output);
          continue;
        }
        if (output.truncated) ctx.warn(`${node}: (older output was dropped: the server keeps the last part only)`);
        const text = output.chunks
          .map((c) => (c.encoding === 'base64' ? Buffer.from(c.data, 'base64').toString('utf8') : c.data))
          .join('');
        if (options.node !== undefined) ctx.io.stdout.write(text);
        else {
          const lines = text.split('\n');
          if (lines.at(-1) === '') lines.pop();
          for (const line of lines) ctx.print(`${node}: ${line}`);
        }
      }
    });
  job
    .command('abort')
    .description(
      'abort a job: nodes not started never start, running ones get SIGTERM, then SIGKILL after the grace period',
    )
    .argument('<id>', 'the job id')
    .addHelpText('after', '\nNeeds the jobs:run capability.\n\nExample:\n  $ muster job abort 0mhq3x1k2-4f9a0c')
    .action(async (id: string, _options: unknown, command: Command) => {
      const record = await ctx.client(command).abortJob(id);
      if (ctx.json(command)) ctx.printJson(record);
      else
        ctx.print(`job ${id}: ${record.state === 'running' || record.state === 'voting' ? 'aborting' : record.state}`);
    });
}
