/**
 * A real `muster agent` process for tests, as the real-agent tests start them:
 * `dir` holds the allowlist (allowlist.json) and the enrolment token
 * (enrol.token); the agent's state folder is `dir/state-<name>`, so an agent
 * started again with the same name keeps its node token and journal.
 */
import { join } from 'node:path';
import { spawnMuster } from '../cli/cli-harness.js';
import type { RunningCli } from '../cli/cli-harness.js';

export interface AgentProcessOptions {
  readonly server: string;
  readonly name: string;
  readonly dir: string;
  readonly attrs?: Readonly<Record<string, string>>;
  readonly tags?: readonly string[];
  /** The session TTL. @default '3s' */
  readonly ttl?: string;
  readonly grace?: string;
  /** More environment for the agent (its commands inherit it); MUSTER_TOKEN is empty unless given. */
  readonly env?: Readonly<Record<string, string>>;
}

export function spawnAgent(options: AgentProcessOptions): RunningCli {
  const { server, name, dir } = options;
  return spawnMuster(
    [
      'agent',
      '--server',
      server,
      '--name',
      name,
      ...Object.entries(options.attrs ?? {}).flatMap(([k, v]) => ['--attr', `${k}=${v}`]),
      ...(options.tags ?? []).flatMap((tag) => ['--tag', tag]),
      '--allowlist',
      join(dir, 'allowlist.json'),
      '--enrol-token-file',
      join(dir, 'enrol.token'),
      '--state-dir',
      join(dir, `state-${name}`),
      '--ttl',
      options.ttl ?? '3s',
      ...(options.grace !== undefined ? ['--grace', options.grace] : []),
    ],
    { env: { MUSTER_TOKEN: '', ...options.env } },
  );
}
