import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { ttlArgument } from '../arguments.js';
import {
  durationArgument,
  nameArgument,
  positiveArgument,
  startSession,
  thisHost,
  untilDone,
} from './primitive-options.js';

interface BarrierFlags {
  count?: number;
  enter?: boolean;
  leave?: boolean;
  reset?: boolean;
  status?: boolean;
  id?: string;
  ttl?: number;
  timeout?: number;
}

/** `muster barrier NAME --count N`: wait until N participants have arrived. */
export function registerBarrier(program: Command, ctx: CliContext): void {
  program
    .command('barrier')
    .description('wait until --count participants have arrived (or --enter / --leave a double barrier)')
    .argument('<name>', 'the barrier name', nameArgument)
    .option(
      '--count <n>',
      'how many participants make the barrier trip (every participant gives the same)',
      positiveArgument,
    )
    .option(
      '--enter',
      'double barrier: arrive, wait for the count, and stay in it after muster exits (until --leave or --ttl)',
    )
    .option('--leave', 'double barrier: leave, and wait until every participant has left')
    .option(
      '--id <id>',
      'this participant (default: the session for a plain barrier, the hostname for --enter/--leave)',
    )
    .option(
      '--ttl <duration>',
      'how long this participant counts if it dies (default 15s; with --enter, 1h)',
      ttlArgument,
    )
    .option(
      '--timeout <duration>',
      'give up after this long (exit 3); default: wait as long as it takes',
      durationArgument,
    )
    .option('--reset', 'close a tripped barrier and forget its participants')
    .option('--status', 'print how many have arrived and whether it tripped')
    .addHelpText(
      'after',
      `
A plain barrier returns once --count participants have arrived; once tripped it
stays open, so late arrivals pass at once, until --reset. A participant that dies
before the barrier trips stops counting after its --ttl.

Examples:
  $ muster barrier hadoop-up --count 11 --timeout 30m
  $ muster barrier deploy --count 3 --enter    # ... work ...
  $ muster barrier deploy --leave
  $ muster barrier hadoop-up --status`,
    )
    .action(async (name: string, flags: BarrierFlags, command: Command) => {
      const client = ctx.client(command);
      const json = ctx.json(command);
      const modes = [flags.enter, flags.leave, flags.reset, flags.status].filter((f) => f === true).length;
      if (modes > 1) throw new UsageError('give at most one of --enter, --leave, --reset, --status');
      if (flags.reset === true) {
        const deleted = await client.resetBarrier(name);
        if (json) ctx.printJson({ reset: true, deleted });
        else ctx.print(`barrier ${name} reset`);
        return;
      }
      if (flags.status === true) {
        const status = await client.barrierStatus(name);
        if (json) ctx.printJson(status);
        else
          ctx.print(
            `barrier ${name}: ${status.arrived} of ${status.count ?? '?'} arrived${status.ready ? ', tripped' : ''}`,
          );
        return;
      }
      if (flags.leave === true) {
        await untilDone(null, flags.timeout, (timeoutMs) =>
          client.leaveBarrier(name, flags.id ?? thisHost(), { timeoutMs }),
        );
        if (json) ctx.printJson({ left: true });
        else ctx.print(`left barrier ${name}; everyone has left`);
        return;
      }
      if (flags.count === undefined) throw new UsageError('--count is required to arrive at a barrier');
      const count = flags.count;
      if (flags.enter === true) {
        // The participant outlives this process: its lease is not kept alive.
        const lease = await client.grantLease(flags.ttl ?? 3600);
        const status = await untilDone(null, flags.timeout, (timeoutMs) =>
          client.enterBarrier(name, count, lease.id, { timeoutMs, id: flags.id ?? thisHost() }),
        );
        if (json) ctx.printJson(status);
        else ctx.print(`barrier ${name}: ${status.arrived} of ${count} arrived, tripped`);
        return;
      }
      const session = await startSession(client, { ttl: flags.ttl ?? 15 });
      try {
        const status = await untilDone(session, flags.timeout, (timeoutMs, signal) =>
          client.enterBarrier(name, count, session.leaseId, {
            timeoutMs,
            ...(flags.id ? { id: flags.id } : {}),
            ...(signal ? { signal } : {}),
          }),
        );
        if (json) ctx.printJson(status);
        else ctx.print(`barrier ${name}: ${Math.max(status.arrived, count)} of ${count} arrived, tripped`);
      } finally {
        await session.close().catch(() => undefined);
      }
    });
}
