import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { InvalidArgumentError } from '../../core/errors.js';
import type { CustomPolicy, Role } from '../../security/policy.js';
import { ROLES } from '../../security/policy.js';
import type { TokenInfo } from '../../security/token-registry.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';

function describe(t: TokenInfo): string {
  const scope = t.node ? ` node=${t.node}` : t.cluster ? ` cluster=${t.cluster}` : '';
  const expires = t.expiresAt ? ` expires ${t.expiresAt}` : '';
  const description = t.description ? `  ${t.description}` : '';
  return `${t.id}  ${t.role}${scope}  created ${t.createdAt}${expires}${description}`;
}

function readPolicy(path: string): CustomPolicy {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as CustomPolicy;
  } catch (error) {
    throw new InvalidArgumentError(`cannot read the policy ${path}: ${(error as Error).message}`, 'invalid_argument');
  }
}

function usesOf(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--uses must be a whole number ≥ 1, got ${JSON.stringify(text)}`);
  return n;
}

/** `muster token create|list|show|revoke|whoami`, and `muster enrol`. */
export function registerToken(program: Command, ctx: CliContext): void {
  const token = program
    .command('token')
    .description('create, list, show and revoke tokens (who may do what); whoami')
    .addHelpText(
      'after',
      `
Roles:
  admin     everything
  operator  read everything, write outside /muster/, use every primitive
  reader    read everything (but tokens)
  node      one machine (--node NAME): write /nodes/NAME/, use the primitives;
            a --policy adds the prefixes it may read
  cluster   one cluster (--cluster NAME): read and write /clusters/NAME/, use the
            primitives named NAME or NAME.<anything>, nothing else
  enrol     makes node tokens: "muster enrol --node NAME" spends one of its --uses
  custom    a --policy file: {"rules":[{"prefix":"/app/","access":"write"}],
            "capabilities":["tokens:manage"],"primitives":["app.*"]}

Examples:
  $ muster token create --role operator --description ci --ttl 30d
  $ muster token create --role cluster --cluster k8s --ttl 2h
  $ muster token create --role node --node web-3
  $ muster token create --role enrol --uses 50 --ttl 1h   # then on each machine: muster --token … enrol --node $(hostname)
  $ muster token list
  $ muster token revoke 3f9a1c2b7d40`,
    );

  token
    .command('create')
    .description('create a token and print its secret (shown this once; the server keeps only a hash)')
    .addOption(new Option('--role <role>', 'what it may do').choices([...ROLES]).makeOptionMandatory())
    .option('--description <text>', 'what it is for (shown in lists and the audit log)')
    .option('--ttl <duration>', 'expire after this, such as 2h or 30d (default: never)')
    .option('--node <name>', 'the machine a node token is')
    .option('--cluster <name>', 'the cluster a cluster token belongs to')
    .option('--policy <file>', 'a JSON policy for a custom token (or extra read rules for a node token)')
    .option('--uses <n>', 'an enrol token: how many machines may enrol with it (default 1)')
    .addHelpText('after', '\nPrints the token on stdout; with --json: {"token","info"}.')
    .action(
      async (
        options: {
          role: Role;
          description?: string;
          ttl?: string;
          node?: string;
          cluster?: string;
          policy?: string;
          uses?: string;
        },
        command: Command,
      ) => {
        const created = await ctx.client(command).createToken({
          role: options.role,
          ...(options.description !== undefined ? { description: options.description } : {}),
          ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
          ...(options.node !== undefined ? { node: options.node } : {}),
          ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
          ...(options.policy !== undefined ? { policy: readPolicy(options.policy) } : {}),
          ...(options.uses !== undefined ? { uses: usesOf(options.uses) } : {}),
        });
        if (ctx.json(command)) ctx.printJson(created);
        else {
          ctx.print(created.token);
          ctx.warn(
            `muster: token ${created.info.id} (${created.info.role}) created; its secret is shown only this once`,
          );
        }
      },
    );

  token
    .command('list')
    .alias('ls')
    .description('list the tokens (ids, roles, descriptions; never a secret)')
    .action(async (_options: unknown, command: Command) => {
      const tokens = await ctx.client(command).listTokens();
      if (ctx.json(command)) ctx.printJson({ tokens });
      else for (const t of tokens) ctx.print(describe(t));
    });

  token
    .command('show')
    .argument('<id>', 'the token id (the 12 hex digits after mst_)')
    .description('show one token (never its secret)')
    .action(async (id: string, _options: unknown, command: Command) => {
      const info = await ctx.client(command).getToken(id);
      if (ctx.json(command)) ctx.printJson(info);
      else ctx.print(describe(info));
    });

  token
    .command('revoke')
    .argument('<id>', 'the token id')
    .description('revoke a token: every server refuses it from now on')
    .action(async (id: string, _options: unknown, command: Command) => {
      await ctx.client(command).revokeToken(id);
      if (ctx.json(command)) ctx.printJson({ revoked: true, id });
      else ctx.print(`revoked ${id}`);
    });

  token
    .command('whoami')
    .description('the token this CLI sends: its id and role')
    .action(async (_options: unknown, command: Command) => {
      const me = await ctx.client(command).whoami();
      if (ctx.json(command)) ctx.printJson(me);
      else ctx.print(me.auth ? `${me.tokenId} ${me.policy}` : 'auth is off on this server (--insecure-no-auth)');
    });
}

/** `muster enrol --node NAME`: turn an enrolment token into this machine's node token. */
export function registerEnrol(program: Command, ctx: CliContext): void {
  program
    .command('enrol')
    .description("spend one use of an enrolment token (--token) on this machine's own node token, printed once")
    .requiredOption('--node <name>', "this machine's name (its token may write only /nodes/NAME/)")
    .option('--description <text>', 'shown in token lists')
    .addHelpText(
      'after',
      `
Example:
  $ muster token create --role enrol --uses 50 --ttl 1h      # an admin, once
  $ muster --token mst_… enrol --node "$(hostname)" > /etc/muster/token`,
    )
    .action(async (options: { node: string; description?: string }, command: Command) => {
      const made = await ctx
        .client(command)
        .enrol(options.node, options.description !== undefined ? { description: options.description } : {});
      if (ctx.json(command)) ctx.printJson(made);
      else ctx.print(made.token);
    });
}
