import type { Command } from 'commander';
import { Option } from 'commander';
import type { JobRequest, JobView } from '../../client/job-types.js';
import type { CliContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { untilInterrupted } from '../interrupt.js';
import { jobSummary, nodeOutcome, progressLine } from './job-format.js';

export interface RunFlags {
  quorum?: string;
  concurrency?: string;
  failureThreshold?: string;
  timeout?: string;
  follow?: boolean;
  detach?: boolean;
}

/** The job options `muster run` and `muster trigger add` share. */
export function jobOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--quorum <n|pct>', 'how many matched nodes must be up: a count or a percentage (default 100%)'),
    )
    .addOption(new Option('--concurrency <n>', 'how many nodes run at once (default: all)'))
    .addOption(
      new Option('--failure-threshold <n|pct>', 'failed nodes tolerated; one more stops the rollout (default 0)'),
    )
    .addOption(new Option('--timeout <duration>', 'how long the job may take (default 1h)'));
}

export function jobRequest(query: string, command: string, args: string[], flags: RunFlags): JobRequest {
  return {
    query,
    command,
    args,
    ...(flags.quorum !== undefined ? { quorum: flags.quorum } : {}),
    ...(flags.concurrency !== undefined ? { concurrency: Number(flags.concurrency) } : {}),
    ...(flags.failureThreshold !== undefined ? { failureThreshold: flags.failureThreshold } : {}),
    ...(flags.timeout !== undefined ? { timeout: flags.timeout } : {}),
  };
}

/** `muster run QUERY COMMAND [ARGS…]`: start a job and follow it to its end. */
export function registerRun(program: Command, ctx: CliContext): void {
  jobOptions(
    program
      .command('run')
      .description('run an allowlisted command on the nodes a query matches, and follow the job to its end')
      .argument('<query>', "the nodes: 'role:web AND env:prod', 'tag:canary', 'name:web-*' (docs/queries.md)")
      .argument('<command>', "the command's name in the agents' allowlist")
      .argument(
        '[args...]',
        'extra arguments (the allowlist entry must accept them); put -- before ones starting with -',
      ),
  )
    .option('-f, --follow', "print each node's output as it comes, prefixed by the node's name")
    .option('--detach', 'start the job, print its id, and exit')
    .addHelpText(
      'after',
      `
Starts a job (needs the jobs:run capability): the nodes matched and up vote
(quorum), then the command runs on them, --concurrency at a time; once more nodes
failed than --failure-threshold, no more start. On a terminal a progress bar shows
done/running/failed of N. Exits 0 only if the job completed; 1 if it failed,
was aborted or missed its quorum; 3 if it timed out. Ctrl-C stops following (the
job goes on: muster job abort ID stops it).

Examples:
  $ muster run 'role:web AND env:prod' chef-client --quorum 80% --concurrency 5 --follow
  $ muster run 'tag:canary' restart-app --timeout 5m
  $ muster run 'name:db-*' run-recipe 'recipe[postgres::upgrade]' --concurrency 1 --failure-threshold 0
  $ muster run role:lb chef-client --detach          # prints the job id`,
    )
    .action(async (query: string, name: string, args: string[], flags: RunFlags, command: Command) => {
      const client = ctx.client(command);
      const started = await client.startJob(jobRequest(query, name, args, flags));
      const json = ctx.json(command);
      if (flags.detach) {
        if (json) ctx.printJson(started);
        else ctx.print(started.id);
        return;
      }
      const stderr = ctx.io.stderr as { write(chunk: string): unknown; isTTY?: boolean };
      const tty = stderr.isTTY === true && !json;
      if (!json) ctx.warn(`job ${started.id}: ${[name, ...args].join(' ')} on ${query}`);
      const states = new Map<string, string>();
      let total = 0;
      const partial = new Map<string, string>();
      let barShown = false;
      const bar = () => {
        if (!tty) return;
        const counts: Record<string, number> = {};
        for (const s of states.values()) counts[s] = (counts[s] ?? 0) + 1;
        stderr.write(`\r\x1b[K${progressLine(counts, total)}`);
        barShown = true;
      };
      const clearBar = () => {
        if (barShown) stderr.write('\r\x1b[K');
        barShown = false;
      };
      // Held open until interrupted: while the server is away the stream's reconnect
      // timers are unref'd, and Node would exit (code 13) in the middle of following.
      const stop = untilInterrupted();
      try {
        for await (const event of client.jobEvents(started.id, { signal: stop.signal })) {
          if (event.type === 'job') {
            total = event.job.nodes.length;
          } else if (event.type === 'node') {
            const before = states.get(event.node.node);
            states.set(event.node.node, event.node.state);
            if (!json && !tty && before !== event.node.state && event.node.state !== 'pending') {
              ctx.warn(`${event.node.node}: ${nodeOutcome(event.node)}`);
            }
          } else if (event.type === 'output' && flags.follow) {
            const { node } = event.chunk;
            const text =
              (partial.get(node) ?? '') +
              (event.chunk.encoding === 'base64'
                ? Buffer.from(event.chunk.data, 'base64').toString('utf8')
                : event.chunk.data);
            const lines = text.split('\n');
            partial.set(node, lines.pop() ?? '');
            clearBar();
            for (const line of lines) {
              if (json) ctx.printJson({ node, stream: event.chunk.stream, line });
              else ctx.print(`${node}: ${line}`);
            }
          }
          bar();
        }
      } finally {
        stop.dispose();
        clearBar();
      }
      for (const [node, rest] of partial) if (rest && flags.follow && !json) ctx.print(`${node}: ${rest}`);
      if (stop.signal.aborted) {
        ctx.warn(`stopped following; the job goes on: muster job show ${started.id}`);
        ctx.exitCode = ExitCode.FAILED;
        return;
      }
      const job: JobView = await client.getJob(started.id);
      if (json) ctx.printJson(job);
      else {
        ctx.warn(jobSummary(job));
        for (const n of job.nodeStates ?? []) if (n.state !== 'succeeded') ctx.warn(`  ${n.node}: ${nodeOutcome(n)}`);
      }
      ctx.exitCode =
        job.state === 'complete' ? ExitCode.OK : job.state === 'timed_out' ? ExitCode.TIMED_OUT : ExitCode.FAILED;
    });
}
