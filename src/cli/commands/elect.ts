import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { acquireAndHold } from './hold.js';
import type { SessionFlags } from './primitive-options.js';
import { nameArgument, sessionOptions } from './primitive-options.js';

/** `muster elect NAME --value V [-- cmd]`: first-in leader election. */
export function registerElect(program: Command, ctx: CliContext): void {
  sessionOptions(
    program
      .command('elect')
      .description('campaign in an election; once leading, run a command (or hold) and resign when done')
      .argument('<name>', 'the election name', nameArgument)
      .argument('[command...]', 'the command the leader runs (after --)')
      .requiredOption(
        '--value <value>',
        "what the leader publishes (its address, say); others read it with 'muster leader'",
      ),
  )
    .addHelpText(
      'after',
      `
The first to campaign leads; the others wait in line and take over, in order,
when the leader resigns or its session ends. The leader's command sees
MUSTER_ELECTION_KEY, MUSTER_ELECTION_TOKEN and MUSTER_LEASE, and may publish
data for the members under /muster/elections/NAME/data/ (a join token, say).
The leader resigns when its command exits (or on Ctrl-C without one). If the
leadership is lost meanwhile, the command is stopped and muster exits 5.

Examples:
  $ muster elect k8s-master --value "$(hostname -i)" -- ./kubeadm-init.sh
  $ muster leader k8s-master                  # on the others: who leads?
  $ muster wait /muster/elections/k8s-master/data/join-token --exists`,
    )
    .action(async (name: string, argv: string[], flags: SessionFlags & { value: string }, command: Command) => {
      const client = ctx.client(command);
      ctx.exitCode = await acquireAndHold(ctx, client, flags, {
        what: `leadership of ${name}`,
        argv,
        acquire: (lease, timeoutMs, signal) =>
          client.campaign(name, flags.value, lease, { timeoutMs, ...(signal ? { signal } : {}) }),
        onAcquired: (leadership) => {
          if (argv.length > 0 && !ctx.json(command))
            ctx.warn(`muster: leading election ${name} (token ${leadership.token})`);
        },
        env: (leadership, lease) => ({
          MUSTER_ELECTION_KEY: leadership.key,
          MUSTER_ELECTION_TOKEN: String(leadership.token),
          MUSTER_LEASE: lease,
        }),
        release: (leadership) => client.resign(name, leadership),
        heldMessage: (leadership) =>
          ctx.json(command)
            ? JSON.stringify(leadership)
            : `leading election ${name} as ${JSON.stringify(flags.value)} (token ${leadership.token}); Ctrl-C resigns`,
      });
    });
}
