/**
 * What the jobs need to know about nodes: which registered nodes a query
 * matches (and whether each is up), and which are up now. The registry
 * (src/nodes/) answers; the scheduler and the routes see only this interface.
 */

export interface DirectoryNode {
  readonly name: string;
  readonly up: boolean;
  readonly tags: readonly string[];
  readonly attrs: Readonly<Record<string, string>>;
  readonly facts: Readonly<Record<string, unknown>>;
}

export interface NodeDirectory {
  /** The registered nodes `query` matches. Throws InvalidArgumentError (invalid_query) for a bad query. */
  match(query: string): Promise<DirectoryNode[]>;
  /** The names of the nodes that are up now. */
  upNodes(): Promise<Set<string>>;
}

/** The nodes `query` matches, split into those up (in the directory's order) and those down (by name). */
export async function upAndDown(
  directory: NodeDirectory,
  query: string,
): Promise<{ readonly up: string[]; readonly down: string[] }> {
  const matched = await directory.match(query);
  return {
    up: matched.filter((n) => n.up).map((n) => n.name),
    down: matched
      .filter((n) => !n.up)
      .map((n) => n.name)
      .sort(),
  };
}

/** Does this node's agent say it allows `command`? Unknown (no `commands` fact) counts as yes. */
export function allowsCommand(node: DirectoryNode, command: string): boolean {
  const commands = node.facts.commands;
  return !Array.isArray(commands) || commands.includes(command);
}
