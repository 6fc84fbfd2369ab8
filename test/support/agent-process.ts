/**
 * A real `muster agent` process for tests, as the real-agent tests start them:
 * `dir` holds the allowlist (allowlist.json) and the enrolment token
 * (enrol.token); the agent's state folder is `dir/state-<name>`, so an agent
 * started again with the same name keeps its node token and journal.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
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

/**
 * An in-process server for real agents (SQLite in `dir/data`, tokens on with
 * `adminToken`, a fast job tick) and an enrolment token for `uses` agents in
 * `dir/enrol.token`, where spawnAgent reads it.
 */
export async function startServerForAgents(
  dir: string,
  adminToken: string,
  uses: number,
): Promise<{ server: MusterServer; admin: MusterClient }> {
  const server = await MusterServer.start({
    store: { kind: 'sqlite', dataDir: join(dir, 'data') },
    port: 0,
    logger: false,
    auth: { adminToken, adminTokenFile: null },
    jobTickMs: 100,
  });
  const admin = new MusterClient({ endpoints: server.url, token: adminToken });
  const { token } = await admin.createToken({ role: 'enrol', uses });
  writeFileSync(join(dir, 'enrol.token'), token);
  return { server, admin };
}
