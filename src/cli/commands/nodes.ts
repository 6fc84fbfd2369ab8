import type { Command } from 'commander';
import type { NodeInfo } from '../../api/agent-protocol.js';
import type { CliContext } from '../context.js';
import { formatTable } from '../format.js';

/** `muster nodes [QUERY]` and `muster node show|rm NAME`. */
export function registerNodes(program: Command, ctx: CliContext): void {
  program
    .command('nodes')
    .description('list the registered nodes, or those a query matches, with their status')
    .argument('[query]', "a node query (docs/queries.md), such as 'role:web AND env:prod'")
    .option('--no-facts', "with --json: leave every node's facts (and registeredAt) out (GET /v1/nodes?facts=false)")
    .addHelpText(
      'after',
      `
One line per node: NAME STATUS LAST-SEEN TAGS ATTRIBUTES. A node is up while its
agent's session lives. The query language: FIELD:VALUE terms (name, tag, status,
an attribute, or a fact), * and ? as wildcards, AND, OR, NOT, parentheses.
The table needs no facts and asks for none; --json has them unless --no-facts
(muster node show NAME has one node's).

Examples:
  $ muster nodes
  $ muster nodes 'role:web AND env:prod'
  $ muster nodes 'tag:canary OR name:web-*' --json
  $ muster nodes 'NOT status:up'
  $ muster nodes --json --no-facts`,
    )
    .action(async (query: string | undefined, options: { facts: boolean }, command: Command) => {
      const client = ctx.client(command);
      if (ctx.json(command)) {
        const nodes = options.facts ? await client.listNodes(query) : await client.listNodes(query, { facts: false });
        ctx.printJson({ nodes });
        return;
      }
      const nodes = await client.listNodes(query, { facts: false });
      if (nodes.length === 0) {
        ctx.warn(
          query === undefined ? 'no nodes registered: start muster agent on them (docs/agent.md)' : 'no node matches',
        );
        return;
      }
      ctx.print(
        formatTable([
          ['NAME', 'STATUS', 'LAST SEEN', 'TAGS', 'ATTRIBUTES'],
          ...nodes.map((n) => [
            n.name,
            n.status,
            n.status === 'up' ? 'now' : n.lastSeen,
            n.tags.join(',') || '-',
            Object.entries(n.attrs)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ') || '-',
          ]),
        ]),
      );
      const down = nodes.filter((n) => n.status === 'down').length;
      ctx.warn(`${nodes.length} nodes: ${nodes.length - down} up, ${down} down`);
    });

  const node = program
    .command('node')
    .description('show one node, or forget it')
    .addHelpText(
      'after',
      `
Examples:
  $ muster node show web-3
  $ muster node rm web-3      # its agent, if still running, registers it again`,
    );
  node
    .command('show')
    .description("a node's status, tags, attributes and facts")
    .argument('<name>', 'the node')
    .action(async (name: string, _options: unknown, command: Command) => {
      const info = await ctx.client(command).getNode(name);
      if (ctx.json(command)) ctx.printJson(info);
      else printNode(ctx, info);
    });
  node
    .command('rm')
    .description('forget a node (needs jobs:run)')
    .argument('<name>', 'the node')
    .action(async (name: string, _options: unknown, command: Command) => {
      const removed = await ctx.client(command).removeNode(name);
      if (ctx.json(command)) ctx.printJson({ removed });
      else ctx.print(removed ? `forgot node ${name}` : `no node ${name}`);
    });
}

function printNode(ctx: CliContext, n: NodeInfo): void {
  ctx.print(`${n.name}: ${n.status}${n.status === 'down' ? ` (last seen ${n.lastSeen})` : ''}`);
  ctx.print(`registered ${n.registeredAt}`);
  ctx.print(`tags: ${n.tags.join(', ') || '-'}`);
  for (const [k, v] of Object.entries(n.attrs)) ctx.print(`attr ${k}=${v}`);
  for (const [k, v] of Object.entries(n.facts))
    ctx.print(`fact ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
}
