/**
 * The node directory the jobs, groups and plans use: the registry's nodes
 * (src/nodes/registry.ts), matched with the node query language (src/nodes/query.ts).
 */
import type { Backend } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { NodeRegistry } from '../nodes/registry.js';
import { nodeMatcher } from '../nodes/query.js';
import type { DirectoryNode, NodeDirectory } from './node-directory.js';

export function registryDirectory(backend: Backend, clock: Clock = systemClock): NodeDirectory {
  const registry = new NodeRegistry(backend, clock);
  const read = async (): Promise<DirectoryNode[]> =>
    (await registry.list()).map((n) => ({
      name: n.name,
      up: n.status === 'up',
      tags: n.tags,
      attrs: n.attrs,
      facts: n.facts,
    }));
  return {
    async match(query) {
      const test = nodeMatcher(query);
      return (await read()).filter(test);
    },
    upNodes: () => registry.upNames(),
  };
}

/** A matcher for a query (the node query language); kept under this name for the tests' directories. */
export function simpleQuery(query: string): (node: DirectoryNode) => boolean {
  return nodeMatcher(query);
}

/** Refuse a query that does not parse (400 invalid_query naming the position) before anything is written. */
export function checkQuery(query: string): void {
  nodeMatcher(query);
}
