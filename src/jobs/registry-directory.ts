/**
 * The node directory the jobs (and groups, plans) use: the registry's nodes
 * (src/nodes/registry.ts: `/muster/nodes/<name>`, up while a key of the node is
 * bound to its agent's lease), matched with the node query language
 * (src/nodes/query.ts, docs/queries.md).
 */
import type { Backend } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { matchNode, parseNodeQuery } from '../nodes/query.js';
import { NODES_PREFIX, listNodes } from '../nodes/registry.js';
import type { DirectoryNode, NodeDirectory } from './node-directory.js';

export { NODES_PREFIX } from '../nodes/registry.js';

export function registryDirectory(
  backend: Backend,
  matcher: (query: string) => (node: DirectoryNode) => boolean = simpleQuery,
  clock: Clock = systemClock,
): NodeDirectory {
  return {
    async match(query) {
      const test = matcher(query);
      const nodes = await listNodes(backend, clock);
      return nodes
        .map((n): DirectoryNode => ({
          name: n.name,
          up: n.status === 'up',
          tags: n.tags,
          attrs: n.attrs,
          facts: n.facts,
        }))
        .filter(test);
    },
    async upNodes() {
      // Keys only: whether a node is up is whether one of its keys has a lease.
      const range = await backend.range({ key: NODES_PREFIX, prefix: true, keysOnly: true });
      const up = new Set<string>();
      for (const kv of range.kvs) {
        if (kv.lease !== null) up.add(kv.key.slice(NODES_PREFIX.length).split('/')[0] ?? '');
      }
      return up;
    },
  };
}

/**
 * A directory node tested against a query in the node query language; `*` alone
 * (the stand-in's "every node") is kept. Throws InvalidQueryError (`invalid_query`).
 */
export function simpleQuery(query: string): (node: DirectoryNode) => boolean {
  if (query.trim() === '*') return () => true;
  const ast = parseNodeQuery(query);
  return (node) =>
    matchNode(ast, {
      name: node.name,
      status: node.up ? 'up' : 'down',
      tags: [...node.tags],
      attrs: node.attrs,
      facts: node.facts,
    });
}

/** Check a query before a job or trigger is accepted (InvalidQueryError naming the position). */
export function checkQuery(query: string): void {
  simpleQuery(query);
}
