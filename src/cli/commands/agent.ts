import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { Agent } from '../../agent/agent.js';
import { loadAllowlist } from '../../agent/allowlist.js';
import { parseDuration } from '../../core/duration.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { untilInterrupted } from '../interrupt.js';

interface AgentFlags {
  server?: string;
  name?: string;
  tag?: string[];
  attr?: string[];
  allowlist?: string;
  enrolTokenFile?: string;
  stateDir?: string;
  config?: string;
  ttl?: string;
  grace?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `muster agent`: run this machine's agent (docs/agent.md). */
export function registerAgent(program: Command, ctx: CliContext, version: () => string): void {
  program
    .command('agent')
    .description("run this node's agent: enrol once, register, keep a session, run allowlisted commands for jobs")
    .option('--server <url>', 'the muster server; also MUSTER_AGENT_SERVER, --endpoint or MUSTER_ENDPOINT')
    .option('--name <name>', "this node's name; also MUSTER_AGENT_NAME (default: the host name)")
    .option('--tag <tag>', 'a tag (repeatable): tag:canary in queries', collect)
    .option('--attr <k=v>', 'an attribute (repeatable): role:web in queries', collect)
    .option('--allowlist <file>', 'the commands this node runs (JSON); also MUSTER_AGENT_ALLOWLIST')
    .option(
      '--enrol-token-file <file>',
      'an enrolment token (muster token create --role enrol), used once; also MUSTER_AGENT_ENROL_TOKEN_FILE',
    )
    .option(
      '--state-dir <dir>',
      'where the node token and the report journal are kept; also MUSTER_AGENT_STATE_DIR (default /var/lib/muster-agent)',
    )
    .option(
      '--config <file>',
      'a JSON file with any of server, name, tags, attrs, allowlist, enrolTokenFile, stateDir, ttl, grace; also MUSTER_AGENT_CONFIG',
    )
    .option('--ttl <duration>', 'session TTL: the node is down this long after the agent dies (default 10s)')
    .option('--grace <duration>', 'on SIGTERM, how long running commands may go on (default 30s)')
    .addHelpText(
      'after',
      `
The agent holds one outbound connection to the server (the node needs no open
port), reconnects with backoff when the server goes away, and registers again.
Only the allowlist's commands run, as argument vectors (never a shell); anything
else is reported as rejected. Flags win over the environment, which wins over
the config file. State: ENROLLING, CONNECTING, STREAMING, BACKOFF, STOPPING.

The allowlist:
  {"chef-client": {"argv": ["chef-client"]},
   "restart-app": {"argv": ["systemctl", "restart", "app"]},
   "run-recipe":  {"argv": ["chef-client", "-o"], "args": "^recipe\\\\[[a-z0-9_:]+\\\\]$"}}
  with optional "cwd", "env", "timeout" ("30m") and "user" per command.

Examples:
  $ muster token create --role enrol --uses 50 --ttl 1h > enrol.token
  $ muster agent --server https://muster:4100 --name web-3 --tag web --attr role=web \\
      --allowlist /etc/muster/allowlist.json --enrol-token-file enrol.token
  $ muster nodes 'role:web'            # from anywhere: the node is up`,
    )
    .action(async (flags: AgentFlags, command: Command) => {
      const env = process.env;
      const configFile = flags.config ?? env.MUSTER_AGENT_CONFIG;
      let file: Record<string, unknown> = {};
      if (configFile) {
        try {
          file = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
        } catch (error) {
          throw new UsageError(`cannot read the agent config ${configFile}: ${(error as Error).message}`);
        }
      }
      const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
      const globals = command.optsWithGlobals() as { endpoint?: string; token?: string };
      const server =
        flags.server ??
        str(env.MUSTER_AGENT_SERVER) ??
        str(file.server) ??
        globals.endpoint ??
        str(env.MUSTER_ENDPOINT);
      if (!server) throw new UsageError('give the server: --server https://muster:4100 (or MUSTER_AGENT_SERVER)');
      const name = flags.name ?? str(env.MUSTER_AGENT_NAME) ?? str(file.name) ?? hostname().split('.')[0]!;
      const allowlistFile = flags.allowlist ?? str(env.MUSTER_AGENT_ALLOWLIST) ?? str(file.allowlist);
      if (!allowlistFile) throw new UsageError('give the allowlist: --allowlist /etc/muster/allowlist.json');
      let allowlist;
      try {
        allowlist = loadAllowlist(allowlistFile);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const attrs: Record<string, string> = { ...((file.attrs as Record<string, string> | undefined) ?? {}) };
      for (const a of flags.attr ?? []) {
        const eq = a.indexOf('=');
        if (eq <= 0) throw new UsageError(`--attr takes NAME=VALUE, got ${JSON.stringify(a)}`);
        attrs[a.slice(0, eq)] = a.slice(eq + 1);
      }
      const duration = (value: unknown, what: string, fallback: number): number => {
        if (value === undefined) return fallback;
        try {
          return parseDuration(value as string, what);
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
      };
      const ttlMs = duration(flags.ttl ?? file.ttl, 'ttl', 10_000);
      if (ttlMs < 2000) throw new UsageError('--ttl must be at least 2s');
      const stateDir =
        flags.stateDir ?? str(env.MUSTER_AGENT_STATE_DIR) ?? str(file.stateDir) ?? '/var/lib/muster-agent';
      const enrolTokenFile = flags.enrolTokenFile ?? str(env.MUSTER_AGENT_ENROL_TOKEN_FILE) ?? str(file.enrolTokenFile);
      // Only a token given on purpose: MUSTER_TOKEN is the CLI user's, not this node's.
      const token = globals.token;
      const agent = new Agent({
        server,
        name,
        tags: [...((file.tags as string[] | undefined) ?? []), ...(flags.tag ?? [])],
        attrs,
        allowlist,
        stateDir,
        ...(enrolTokenFile ? { enrolTokenFile } : {}),
        ...(token ? { token } : {}),
        ttlSeconds: Math.ceil(ttlMs / 1000),
        graceMs: duration(flags.grace ?? file.grace, 'grace', 30_000),
        version: version(),
        log: (line) => ctx.warn(line),
      });
      const interrupt = untilInterrupted();
      interrupt.signal.addEventListener('abort', () => agent.stop(), { once: true });
      try {
        await agent.run();
      } finally {
        interrupt.dispose();
      }
    });
}
