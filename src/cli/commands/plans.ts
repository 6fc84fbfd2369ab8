import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { formatTable } from '../format.js';
import { untilInterrupted } from '../interrupt.js';
import type { GroupStatus, PlanPreview, PlanRecord } from '../../client/plan-types.js';

/** `muster group add|list|show|rm`: named node queries. */
export function registerGroup(program: Command, ctx: CliContext): void {
  const group = program
    .command('group')
    .description('groups: named node queries that desired states and plans apply to')
    .addHelpText(
      'after',
      `
Examples:
  $ muster group add web 'role:web AND env:prod'
  $ muster group list
  $ muster group show web          # its nodes, desired vs actual state
  $ muster group rm web`,
    );
  group
    .command('add')
    .description('make or change a group (needs jobs:run)')
    .argument('<name>', 'the group name')
    .argument('<query>', "a node query (docs/queries.md), such as 'role:web AND env:prod'")
    .action(async (name: string, query: string, _options: unknown, command: Command) => {
      const made = await ctx.client(command).putGroup(name, query);
      if (ctx.json(command)) ctx.printJson(made);
      else ctx.print(`group ${made.name}: ${made.query}`);
    });
  group
    .command('list')
    .description('every group and its query')
    .action(async (_options: unknown, command: Command) => {
      const groups = await ctx.client(command).listGroups();
      if (ctx.json(command)) ctx.printJson({ groups });
      else if (groups.length === 0) ctx.warn('no groups: muster group add NAME QUERY makes one');
      else ctx.print(formatTable([['GROUP', 'QUERY'], ...groups.map((g) => [g.name, g.query])]));
    });
  group
    .command('show')
    .description("a group's nodes with their desired and actual state")
    .argument('<name>', 'the group name')
    .action(async (name: string, _options: unknown, command: Command) => {
      const status = await ctx.client(command).groupStatus(name);
      if (ctx.json(command)) ctx.printJson(status);
      else printStatus(ctx, status);
    });
  group
    .command('rm')
    .description('remove a group and its desired state (needs jobs:run)')
    .argument('<name>', 'the group name')
    .action(async (name: string, _options: unknown, command: Command) => {
      const removed = await ctx.client(command).removeGroup(name);
      if (ctx.json(command)) ctx.printJson({ removed });
      else ctx.print(removed ? `removed group ${name}` : `no group ${name}`);
    });
}

/** `muster desired set|get GROUP`. */
export function registerDesired(program: Command, ctx: CliContext): void {
  const desired = program
    .command('desired')
    .description("a group's desired state: what its nodes should converge to")
    .addHelpText(
      'after',
      `
The desired state lives on the server; a node's recipe reads it
(muster desired get GROUP --json) and reports what it reached
(muster state report GROUP STATE --version V). A node that was down catches up
on return by reading it: no plan needs to be running.

Examples:
  $ muster desired set web converged --version v42 --param image=web:v42
  $ muster desired get web`,
    );
  desired
    .command('set')
    .description("set a group's desired state (needs jobs:run); the previous one is kept for a rollback")
    .argument('<group>', 'the group')
    .argument('<state>', 'the state, such as converged')
    .option('--version <v>', 'the version to be at')
    .option('--param <k=v...>', 'parameters for the recipe (repeatable)')
    .action(async (group: string, state: string, options: { version?: string; param?: string[] }, command: Command) => {
      const params: Record<string, string> = {};
      for (const p of options.param ?? []) {
        const eq = p.indexOf('=');
        if (eq <= 0) throw new UsageError(`--param takes NAME=VALUE, got ${JSON.stringify(p)}`);
        params[p.slice(0, eq)] = p.slice(eq + 1);
      }
      const set = await ctx
        .client(command)
        .setDesired(group, { state, ...(options.version !== undefined ? { version: options.version } : {}), params });
      if (ctx.json(command)) ctx.printJson(set);
      else ctx.print(`${group}: ${set.state}${set.version ? ` ${set.version}` : ''}`);
    });
  desired
    .command('get')
    .description("a group's desired state (with --node: what that node is to be in now)")
    .argument('<group>', 'the group')
    .option(
      '--node <name>',
      'the node asking: while a rolling step has not released it, it gets the previous desired state',
    )
    .addHelpText(
      'after',
      `
A recipe asks with its node's name, and converges to what it is told:

  $ muster desired get web --node "$(hostname)" --json    # {"desired": …, "effective": {"state", "version", "params"}}`,
    )
    .action(async (group: string, options: { node?: string }, command: Command) => {
      const client = ctx.client(command);
      const got = await client.getDesired(group);
      const effective = options.node !== undefined ? await client.effectiveDesired(group, options.node) : undefined;
      const show = (d: { state: string; version: string | null; params: Record<string, string> }) => {
        const params = Object.entries(d.params).map(([k, v]) => `${k}=${v}`);
        return `${d.state}${d.version ? ` ${d.version}` : ''}${params.length ? ` (${params.join(' ')})` : ''}`;
      };
      if (ctx.json(command)) ctx.printJson({ desired: got, ...(effective !== undefined ? { effective } : {}) });
      else if (!got) ctx.print(`${group}: no desired state`);
      else {
        ctx.print(`${group}: ${show(got)}`);
        ctx.print(`set ${got.setAt} by ${got.setBy}`);
        if (got.rollout)
          ctx.print(
            `rolling out (plan ${got.rollout.plan}): released to ${got.rollout.released.join(' ') || 'none yet'}`,
          );
        if (effective !== undefined)
          ctx.print(`for ${options.node ?? ''}: ${effective ? show(effective) : 'no desired state yet'}`);
      }
    });
}

/** `muster state GROUP` and `muster state report GROUP STATE`. */
export function registerState(program: Command, ctx: CliContext): void {
  const state = program
    .command('state')
    .description("nodes' actual state: show a group's (desired vs actual), or report this node's")
    .argument('[group]', 'the group to show')
    .addHelpText(
      'after',
      `
Examples:
  $ muster state web                                   # desired vs actual, node by node
  $ muster state report web converged --version v42    # from a recipe, on the node
  $ muster state report web converged --version v42 --node web-3   # an operator, for a node`,
    )
    .action(async (group: string | undefined, _options: unknown, command: Command) => {
      if (group === undefined)
        throw new UsageError('name a group (muster state web), or report: muster state report GROUP STATE');
      const status = await ctx.client(command).groupStatus(group);
      if (ctx.json(command)) ctx.printJson(status);
      else printStatus(ctx, status);
      if (status.nodes.some((n) => !n.converged)) ctx.exitCode = ExitCode.FAILED;
    });
  state
    .command('report')
    .description('report what this node is in a group (a node token reports for its own node only)')
    .argument('<group>', 'the group')
    .argument('<state>', 'the state reached, such as converged (or failed)')
    .option('--version <v>', 'the version reached')
    .option('--node <name>', "the node (default: the node token's, else this host's name)")
    .action(async (group: string, reached: string, options: { version?: string; node?: string }, command: Command) => {
      const client = ctx.client(command);
      let node = options.node;
      if (node === undefined) {
        const who = await client.whoami();
        node = /^role node \((.+)\)$/.exec(who.policy)?.[1] ?? (await import('node:os')).hostname();
      }
      const reported = await client.reportState(group, node, reached, options.version ?? null);
      if (ctx.json(command)) ctx.printJson(reported);
      else ctx.print(`${node} in ${group}: ${reported.state}${reported.version ? ` ${reported.version}` : ''}`);
    });
}

/** `muster plan apply|status|pause|resume|abort` and `muster plans`. */
export function registerPlan(program: Command, ctx: CliContext): void {
  const plan = program
    .command('plan')
    .description('apply a plan: move groups to a desired state step by step, canary first')
    .addHelpText(
      'after',
      `
A plan file (YAML or JSON, docs/plans.md) lists steps: each sets a group's desired
state, pokes its nodes with an allowlisted command, waits until they report the
state, and can roll through the group (a canary, then batches, a pause between)
behind a health gate. Steps run in the order their "after" lists give. On failure
the plan stops, or with on_failure: rollback puts the previous desired states back.

Examples:
  $ muster plan apply release.yaml --dry-run      # the order, the batches, the nodes
  $ muster plan apply release.yaml --follow       # live progress per step and batch
  $ muster plan status 0mx8h6or8-a300b4
  $ muster plan pause 0mx8h6or8-a300b4
  $ muster plan resume 0mx8h6or8-a300b4
  $ muster plan abort 0mx8h6or8-a300b4`,
    );
  plan
    .command('apply')
    .description('apply a plan file (needs jobs:run); --dry-run shows what it would do')
    .argument('<file>', 'the plan file (YAML or JSON); - for stdin')
    .option('--dry-run', 'print the order, the batches and the nodes in each; apply nothing')
    .option('--follow', 'follow the plan until it ends; exit 0 only if it completed')
    .action(async (file: string, options: { dryRun?: boolean; follow?: boolean }, command: Command) => {
      const source = await readSource(file);
      const filename = file === '-' ? 'stdin' : basename(file);
      const client = ctx.client(command);
      if (options.dryRun) {
        const preview = await client.previewPlan(source, filename);
        if (ctx.json(command)) ctx.printJson(preview);
        else printPreview(ctx, preview);
        return;
      }
      const applied = await client.applyPlan(source, filename);
      if (!options.follow) {
        if (ctx.json(command)) ctx.printJson(applied);
        else ctx.print(applied.id);
        return;
      }
      ctx.warn(`plan ${applied.id} (${applied.name})`);
      let last: PlanRecord = applied;
      let shown = '';
      // While the server is away the stream's reconnect timers are unref'd: without
      // this hold, Node would exit (code 13) in the middle of following.
      const interrupt = untilInterrupted();
      try {
        for await (const record of client.planEvents(applied.id, { signal: interrupt.signal })) {
          last = record;
          const line = progressOf(record);
          if (line !== shown && !ctx.json(command)) ctx.warn(line);
          shown = line;
        }
      } finally {
        interrupt.dispose();
      }
      if (interrupt.signal.aborted) {
        ctx.warn(`stopped following; the plan goes on: muster plan status ${applied.id}`);
        ctx.exitCode = ExitCode.FAILED;
        return;
      }
      const final = await client.getPlan(applied.id);
      last = final;
      if (ctx.json(command)) ctx.printJson(last);
      else printPlan(ctx, last);
      ctx.exitCode = last.state === 'complete' ? ExitCode.OK : ExitCode.FAILED;
    });
  plan
    .command('status')
    .description('a plan: its steps, their batches and where it is')
    .argument('<id>', 'the plan id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const got = await ctx.client(command).getPlan(id);
      if (ctx.json(command)) ctx.printJson(got);
      else printPlan(ctx, got);
    });
  for (const [what, text] of [
    ['pause', 'pause a plan: no new batch starts (a running job goes on); timeouts stand still'],
    ['resume', 'resume a paused plan'],
    ['abort', 'abort a plan: its running jobs are aborted, nothing more starts'],
  ] as const) {
    plan
      .command(what)
      .description(`${text} (needs jobs:run)`)
      .argument('<id>', 'the plan id')
      .action(async (id: string, _options: unknown, command: Command) => {
        const client = ctx.client(command);
        const got =
          what === 'pause'
            ? await client.pausePlan(id)
            : what === 'resume'
              ? await client.resumePlan(id)
              : await client.abortPlan(id);
        if (ctx.json(command)) ctx.printJson(got);
        else ctx.print(`plan ${id}: ${what} requested (${got.state})`);
      });
  }
  program
    .command('plans')
    .description('list plans, newest first')
    .option('--limit <n>', 'at most this many (default 100)')
    .action(async (options: { limit?: string }, command: Command) => {
      const plans = await ctx.client(command).listPlans(options.limit ? { limit: Number(options.limit) } : {});
      if (ctx.json(command)) ctx.printJson({ plans });
      else if (plans.length === 0) ctx.warn('no plans');
      else
        ctx.print(
          formatTable([
            ['ID', 'NAME', 'STATE', 'STEPS', 'CREATED'],
            ...plans.map((p) => [
              p.id,
              p.name,
              p.state,
              `${p.steps.filter((s) => s.state === 'complete').length}/${p.steps.length}`,
              p.createdAt,
            ]),
          ]),
        );
    });
}

async function readSource(file: string): Promise<string> {
  try {
    if (file === '-') {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    }
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the plan ${file}: ${(error as Error).message}`);
  }
}

function printStatus(ctx: CliContext, status: GroupStatus): void {
  const d = status.desired;
  ctx.print(
    `group ${status.group} (${status.query}): desired ${d ? `${d.state}${d.version ? ` ${d.version}` : ''}` : 'none'}`,
  );
  if (status.nodes.length === 0) {
    ctx.print('no nodes match');
    return;
  }
  ctx.print(
    formatTable([
      ['NODE', 'UP', 'STATE', 'VERSION', 'CONVERGED', 'REPORTED'],
      ...status.nodes.map((n) => [
        n.node,
        n.up ? 'up' : 'down',
        n.state ?? '-',
        n.version ?? '-',
        n.converged ? 'yes' : 'no',
        n.at ?? '-',
      ]),
    ]),
  );
}

function printPreview(ctx: CliContext, preview: PlanPreview): void {
  ctx.print(`plan ${preview.name} (on failure: ${preview.onFailure}), in this order:`);
  preview.steps.forEach((step, i) => {
    const what = [
      step.desired ? `desired ${step.desired.state}${step.desired.version ? ` ${step.desired.version}` : ''}` : '',
      step.run ? `run ${step.run}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    ctx.print(
      `${i + 1}. ${step.id}: group ${step.group}${step.after.length ? ` after ${step.after.join(', ')}` : ''}: ${what}`,
    );
    step.batches.forEach((nodes, b) => ctx.print(`   batch ${b + 1}: ${nodes.join(' ')}`));
    if (step.batches.length === 0) ctx.print('   no node of the group is up');
    if (step.skipped.length) ctx.print(`   down now (they catch up on return): ${step.skipped.join(' ')}`);
  });
}

function progressOf(plan: PlanRecord): string {
  const steps = plan.steps.map((s) => {
    const done = s.batches.filter((b) => b.state === 'complete').length;
    return `${s.id} ${s.state}${s.batches.length > 1 ? ` ${done}/${s.batches.length}` : ''}`;
  });
  return `${plan.state}: ${steps.join(' · ')}`;
}

function printPlan(ctx: CliContext, plan: PlanRecord): void {
  ctx.print(`plan ${plan.id} ${plan.name}: ${plan.state}${plan.reason ? ` (${plan.reason})` : ''}`);
  for (const step of plan.steps) {
    ctx.print(`  ${step.id} [${step.group}]: ${step.state}${step.reason ? ` (${step.reason})` : ''}`);
    step.batches.forEach((b, i) =>
      ctx.print(
        `    batch ${i + 1}: ${b.state}  ${b.nodes.join(' ')}${b.jobId ? `  job ${b.jobId}` : ''}${b.reason ? `  ${b.reason}` : ''}`,
      ),
    );
    if (step.skipped.length) ctx.print(`    skipped (down): ${step.skipped.join(' ')}`);
  }
}
