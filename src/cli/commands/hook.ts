import type { Command } from 'commander';
import type { HookView } from '../../client/hook-types.js';
import type { HookRequest } from '../../client/hook-types.js';
import type { CliContext } from '../context.js';
import { formatTable } from '../format.js';

/** `muster hook add|list|show|deliveries|pause|resume|rm`: durable webhooks (docs/hooks.md). */
export function registerHook(program: Command, ctx: CliContext): void {
  const hook = program
    .command('hook')
    .description('POST every change under a prefix to a URL, in order, at least once (webhooks)')
    .addHelpText(
      'after',
      `
Examples:
  $ muster hook add ci --prefix /deploy/ --url https://ci.example/hook --secret s3cret
  $ muster hook list
  $ muster hook show ci
  $ muster hook deliveries ci
  $ muster hook pause ci && muster hook resume ci
  $ muster hook rm ci

Every command needs the hooks:manage capability. See docs/hooks.md.`,
    );
  hook
    .command('add')
    .description('add a webhook: changes under --prefix from now on are POSTed to --url')
    .argument('<name>', 'the hook name (letters, digits, ".", "_", "-")')
    .requiredOption('--prefix <prefix>', 'the keys to deliver, such as /ephemerals/ (a literal prefix)')
    .requiredOption('--url <url>', 'where to POST: http:// or https://, no credentials in it')
    .option('--secret <secret>', 'sign each body: X-Muster-Signature-256: sha256=<hex HMAC-SHA256>')
    .option('--events <list>', 'which events: put, delete or put,delete (default put,delete)')
    .option('--format <format>', 'the body: json (muster) or noah (Noah watch message) (default json)')
    .addHelpText(
      'after',
      `
Each change is one POST with headers X-Muster-Delivery (an idempotency key,
<hook>:<revision>:<index>), X-Muster-Revision, X-Muster-Hook, X-Muster-Event.
A failure (no 2xx within 10 s) is retried with backoff from 1 s to 5 min; after
3 failures in a row the hook is "failing", after 24 h "paused" (muster hook resume).

Examples:
  $ muster hook add ci --prefix /deploy/ --url https://ci.example/hook --secret s3cret
  $ muster hook add audit --prefix /config/ --url http://10.0.0.9:8080/changes --events delete`,
    )
    .action(
      async (
        name: string,
        flags: { prefix: string; url: string; secret?: string; events?: string; format?: string },
        cmd: Command,
      ) => {
        const request: HookRequest = {
          name,
          prefix: flags.prefix,
          url: flags.url,
          ...(flags.secret !== undefined ? { secret: flags.secret } : {}),
          ...(flags.events !== undefined
            ? { events: flags.events.split(',').map((e) => e.trim()) as HookRequest['events'] }
            : {}),
          ...(flags.format !== undefined ? { format: flags.format } : {}),
        };
        const view = await ctx.client(cmd).addHook(request);
        if (ctx.json(cmd)) ctx.printJson(view);
        else ctx.print(`hook ${view.name}: ${view.events.join(',')} under ${view.prefix} → ${view.url}`);
      },
    );
  hook
    .command('list')
    .description('every webhook and its status')
    .addHelpText('after', '\nExample:\n  $ muster hook list --json')
    .action(async (_options: unknown, cmd: Command) => {
      const hooks = await ctx.client(cmd).listHooks();
      if (ctx.json(cmd)) {
        ctx.printJson({ hooks });
        return;
      }
      if (hooks.length === 0) {
        ctx.warn('no hooks');
        return;
      }
      ctx.print(
        formatTable([
          ['NAME', 'PREFIX', 'URL', 'STATUS', 'DELIVERED', 'FAILURES'],
          ...hooks.map((h) => [h.name, h.prefix, h.url, h.status, String(h.delivered), String(h.failures)]),
        ]),
      );
    });
  hook
    .command('show')
    .description('a webhook: status, cursor, failures, missed history')
    .argument('<name>', 'the hook name')
    .addHelpText('after', '\nExample:\n  $ muster hook show ci')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const view = await ctx.client(cmd).getHook(name);
      if (ctx.json(cmd)) ctx.printJson(view);
      else printHook(ctx, view);
    });
  hook
    .command('deliveries')
    .description("a webhook's last 100 delivery attempts, oldest first")
    .argument('<name>', 'the hook name')
    .addHelpText('after', '\nExample:\n  $ muster hook deliveries ci --json')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const deliveries = await ctx.client(cmd).hookDeliveries(name);
      if (ctx.json(cmd)) {
        ctx.printJson({ deliveries });
        return;
      }
      if (deliveries.length === 0) {
        ctx.warn('no deliveries yet');
        return;
      }
      ctx.print(
        formatTable([
          ['TIME', 'STATUS', 'LATENCY', 'ATTEMPT', 'ERROR'],
          ...deliveries.map((d) => [
            d.at,
            d.status === 0 ? '-' : String(d.status),
            `${d.latencyMs}ms`,
            String(d.attempt),
            d.error ?? '',
          ]),
        ]),
      );
    });
  for (const [verb, what] of [
    ['pause', 'stop delivering (changes wait; history is kept up to the bound)'],
    ['resume', 'deliver again from the cursor (after a pause by hand or after failing too long)'],
  ] as const) {
    hook
      .command(verb)
      .description(`${verb} a webhook: ${what}`)
      .argument('<name>', 'the hook name')
      .addHelpText('after', `\nExample:\n  $ muster hook ${verb} ci`)
      .action(async (name: string, _options: unknown, cmd: Command) => {
        const client = ctx.client(cmd);
        const view = verb === 'pause' ? await client.pauseHook(name) : await client.resumeHook(name);
        if (ctx.json(cmd)) ctx.printJson(view);
        else ctx.print(`hook ${view.name}: ${view.status}`);
      });
  }
  hook
    .command('rm')
    .description('remove a webhook')
    .argument('<name>', 'the hook name')
    .addHelpText('after', '\nExample:\n  $ muster hook rm ci')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      await ctx.client(cmd).removeHook(name);
      if (ctx.json(cmd)) ctx.printJson({ removed: true });
      else ctx.print(`hook ${name} removed`);
    });
}

function printHook(ctx: CliContext, view: HookView): void {
  ctx.print(`hook ${view.name}: ${view.events.join(',')} under ${view.prefix} → ${view.url} (${view.format})`);
  ctx.print(`status: ${view.status}, delivered ${view.delivered}, failures ${view.failures}`);
  ctx.print(`cursor: revision ${view.cursor.revision} (event ${view.cursor.next})`);
  if (view.lastError) ctx.print(`last error: ${view.lastError}`);
  if (view.missed) ctx.print(`missed: revisions ${view.missed.from} to ${view.missed.to} (compacted before delivery)`);
  ctx.print(`secret: ${view.secretSet ? 'set' : 'none'}; created ${view.createdAt} by ${view.createdBy}`);
}
