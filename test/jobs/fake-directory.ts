import type { DirectoryNode, NodeDirectory } from '../../src/jobs/node-directory.js';
import { simpleQuery } from '../../src/jobs/registry-directory.js';

/** A node directory the test sets up: which nodes exist, with what tags, and which are up. */
export class FakeDirectory implements NodeDirectory {
  readonly nodes = new Map<string, DirectoryNode>();

  add(name: string, options: { tags?: string[]; attrs?: Record<string, string>; up?: boolean } = {}): void {
    this.nodes.set(name, {
      name,
      up: options.up ?? true,
      tags: options.tags ?? [],
      attrs: options.attrs ?? {},
      facts: {},
    });
  }

  setUp(name: string, up: boolean): void {
    const node = this.nodes.get(name);
    if (node) this.nodes.set(name, { ...node, up });
  }

  async match(query: string): Promise<DirectoryNode[]> {
    const test = simpleQuery(query);
    return [...this.nodes.values()].filter(test);
  }

  async upNodes(): Promise<Set<string>> {
    return new Set([...this.nodes.values()].filter((n) => n.up).map((n) => n.name));
  }
}
