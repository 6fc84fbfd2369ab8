import type { Command } from 'commander';
import { InvalidArgumentError as CommanderArgumentError } from 'commander';
import type { NodeInfo } from '../../api/agent-protocol.js';
import { MusterError } from '../../core/errors.js';
import { validateName } from '../../core/key-path.js';
import { parseNodeQuery } from '../../nodes/query.js';
import type { CliContext } from '../context.js';
import { formatTable } from '../format.js';

function nodeNameArgument(text: string): string {
  try {
    return validateName(text, 'node name');
  } catch (error) {
    if (error instanceof MusterError) throw new CommanderArgumentError(error.message);
    throw error;
  }
}

/** A query checked before anything is sent: a usage error (exit 2) naming the position. */
function queryArgument(text: string): string {
  if (text.trim() === '') return text;
  try {
    parseNodeQuery(text);
    return text;
  } catch (error) {
    if (error instanceof MusterError) throw new CommanderArgumentError(error.message);
    throw error;
  }
}

/** "now", "42s ago", "5m ago", "3h ago", "2d ago". */
export function ago(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 5) return 'now';
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86_400)}d ago`;
}

function attrsText(attrs: Record<string, string>): string {
  return Object.entries(attrs)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** `muster nodes [QUERY]`, `muster node show NAME`, `muster node rm NAME`. */
export function registerNodes(program: Command, ctx: CliContext): void {
  program
    .command('nodes')
    .description('list the registered nodes (those matching QUERY): status, last seen, tags, attributes')
    .argument('[query]', 'a node query (docs/queries.md), e.g. "role:web AND env:prod"', queryArgument)
    .addHelpText(
      'after',
      `
A node is up while its agent's session lives; down once the session has expired.
The query language: FIELD:VALUE terms (tag:, name:, status:up|down, fact.<key>:,
any other field is an attribute), AND / OR / NOT, parentheses, * and ? globs.
A query that does not parse is refused with the position of the error (exit 2).

With --json: {"nodes":[{"name","status","tags","attrs","facts","registeredAt","lastSeen"}]}.

Examples:
  $ muster nodes
  $ muster nodes 'role:web AND env:prod'
  $ muster nodes 'tag:canary OR name:web-*'
  $ muster nodes 'status:down' --json`,
    )
    .action(async (query: string | undefined, _options: unknown, command: Command) => {
      const nodes = await ctx.client(command).listNodes(query);
      if (ctx.json(command)) {
        ctx.printJson({ nodes });
        return;
      }
      if (nodes.length === 0) {
        ctx.warn(query ? `no node matches ${query}` : 'no node is registered');
        return;
      }
      const now = Date.now();
      ctx.print(
        formatTable([
          ['NAME', 'STATUS', 'LAST SEEN', 'TAGS', 'ATTRS'],
          ...nodes.map((n) => [
            n.name,
            n.status,
            ago(n.lastSeen, now),
            n.tags.join(',') || '-',
            attrsText(n.attrs) || '-',
          ]),
        ]),
      );
    });

  const node = program
    .command('node')
    .description('show or remove one registered node')
    .addHelpText('after', '\nExamples:\n  $ muster node show web-3\n  $ muster node rm web-3');

  node
    .command('show')
    .description("a node's status, tags, attributes and detected facts")
    .argument('<name>', 'the node name', nodeNameArgument)
    .addHelpText(
      'after',
      `
With --json: {"name","status","tags","attrs","facts","registeredAt","lastSeen"}.

Example:
  $ muster node show web-3`,
    )
    .action(async (name: string, _options: unknown, command: Command) => {
      const info: NodeInfo = await ctx.client(command).getNode(name);
      if (ctx.json(command)) {
        ctx.printJson(info);
        return;
      }
      ctx.print(`node ${info.name}: ${info.status} (last seen ${ago(info.lastSeen)}, registered ${info.registeredAt})`);
      ctx.print(`  tags:  ${info.tags.join(', ') || '-'}`);
      ctx.print(`  attrs: ${attrsText(info.attrs) || '-'}`);
      for (const [key, value] of Object.entries(info.facts)) {
        ctx.print(`  fact ${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
      }
    });

  node
    .command('rm')
    .description('forget a node (operator); a running agent registers it again when it reconnects')
    .argument('<name>', 'the node name', nodeNameArgument)
    .addHelpText('after', '\nExample:\n  $ muster node rm web-3')
    .action(async (name: string, _options: unknown, command: Command) => {
      await ctx.client(command).removeNode(name);
      if (ctx.json(command)) ctx.printJson({ removed: true });
      else ctx.print(`removed node ${name}`);
    });
}
