/**
 * The node directory over the registry's keys (`/muster/nodes/<name>`: the
 * node's registration as JSON; up while a key of the node bound to its agent's
 * lease exists).
 */
import type { Backend } from '../core/backend.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { DirectoryNode, NodeDirectory } from './node-directory.js';

export const NODES_PREFIX = '/muster/nodes/';

interface Registration {
  tags?: string[];
  attrs?: Record<string, string>;
  facts?: Record<string, unknown>;
}

export function registryDirectory(
  backend: Backend,
  matcher: (query: string) => (node: DirectoryNode) => boolean = simpleQuery,
): NodeDirectory {
  const read = async (): Promise<DirectoryNode[]> => {
    const range = await backend.range({ key: NODES_PREFIX, prefix: true });
    const nodes = new Map<string, { reg: Registration; up: boolean }>();
    for (const kv of range.kvs) {
      const rest = kv.key.slice(NODES_PREFIX.length);
      const name = rest.split('/')[0] ?? '';
      const entry = nodes.get(name) ?? { reg: {}, up: false };
      if (rest === name) {
        try {
          entry.reg = JSON.parse(Buffer.from(kv.value).toString('utf8')) as Registration;
        } catch {
          // Not a registration: the node is listed without tags.
        }
      }
      if (kv.lease !== null) entry.up = true;
      nodes.set(name, entry);
    }
    return [...nodes].map(([name, { reg, up }]) => ({
      name,
      up,
      tags: reg.tags ?? [],
      attrs: reg.attrs ?? {},
      facts: reg.facts ?? {},
    }));
  };
  return {
    async match(query) {
      const test = matcher(query);
      return (await read()).filter(test);
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
 * A small query language until src/nodes/query.ts: terms joined by AND; a term is
 * `*`, `name:GLOB`, `tag:T` or `ATTR:VALUE`.
 */
export function simpleQuery(query: string): (node: DirectoryNode) => boolean {
  const terms = query
    .trim()
    .split(/\s+AND\s+/)
    .map((t) => t.trim());
  const tests = terms.map((term) => {
    if (term === '*') return () => true;
    const colon = term.indexOf(':');
    if (colon <= 0 || colon === term.length - 1) {
      throw new InvalidArgumentError(
        `invalid query ${JSON.stringify(query)}: expected FIELD:VALUE at ${JSON.stringify(term)}`,
        'invalid_request',
      );
    }
    const field = term.slice(0, colon);
    const value = term.slice(colon + 1);
    const glob = new RegExp('^' + value.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
    if (field === 'name') return (n: DirectoryNode) => glob.test(n.name);
    if (field === 'tag') return (n: DirectoryNode) => n.tags.some((t) => glob.test(t));
    return (n: DirectoryNode) => n.attrs[field] !== undefined && glob.test(n.attrs[field] ?? '');
  });
  return (node) => tests.every((t) => t(node));
}

/** Check a query before a job or trigger is accepted (InvalidArgumentError naming the problem). */
export function checkQuery(query: string): void {
  simpleQuery(query);
}
