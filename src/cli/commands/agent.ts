import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { InvalidArgumentError as CommanderArgumentError } from 'commander';
import { Agent } from '../../agent/agent.js';
import { AllowlistError, loadAllowlist } from '../../agent/allowlist.js';
import type { Allowlist } from '../../agent/allowlist.js';
import { validateName } from '../../core/key-path.js';
import type { CliContext } from '../context.js';

const DEFAULT_STATE_DIR = '/var/lib/muster-agent';

interface AgentFlags {
  server?: string[];
  name?: string;
  tag?: string[];
  attr?: string[];
  allowlist?: string;
  enrolTokenFile?: string;
  stateDir?: string;
  config?: string;
  sessionTtl?: string;
  stopGrace?: string;
}

/** What a config file (`--config`, MUSTER_AGENT_CONFIG) may say; flags and the environment win. */
interface AgentConfigFile {
  server?: string | string[];
  name?: string;
  tags?: string[];
  attrs?: Record<string, string>;
  allowlist?: string;
  enrolTokenFile?: string;
  stateDir?: string;
  ca?: string;
  sessionTtl?: number;
  stopGrace?: number;
}

const CONFIG_FIELDS = new Set([
  'server',
  'name',
  'tags',
  'attrs',
  'allowlist',
  'enrolTokenFile',
  'stateDir',
  'ca',
  'sessionTtl',
  'stopGrace',
]);

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function usage(message: string): never {
  throw new CommanderArgumentError(message);
}

function readConfig(file: string): AgentConfigFile {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    usage(`cannot read the agent config ${file}: ${(error as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) usage(`${file}: expected a JSON object`);
  for (const key of Object.keys(data)) {
    if (!CONFIG_FIELDS.has(key))
      usage(`${file}: unknown field ${JSON.stringify(key)} (${[...CONFIG_FIELDS].join(', ')})`);
  }
  return data as AgentConfigFile;
}

function parseAttrs(list: readonly string[]): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) usage(`--attr takes KEY=VALUE, got ${JSON.stringify(item)}`);
    attrs[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return attrs;
}

const splitList = (text: string | undefined): string[] =>
  text === undefined
    ? []
    : text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);

function seconds(text: string | number | undefined, what: string, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) usage(`${what} must be a number of seconds above 0, got ${JSON.stringify(text)}`);
  return n;
}

/** `muster agent`: run this machine's node agent. */
export function registerAgent(program: Command, ctx: CliContext, version: string): void {
  program
    .command('agent')
    .description("run this node's agent: enrol, register, keep a session, run allowlisted commands for jobs")
    .option('--server <url>', 'server URL (repeatable, or comma-separated); MUSTER_AGENT_SERVER', collect)
    .option('--name <name>', 'the node name (default: the hostname); MUSTER_AGENT_NAME')
    .option('--tag <tag>', 'a tag for queries such as tag:web (repeatable); MUSTER_AGENT_TAGS=a,b', collect)
    .option(
      '--attr <key=value>',
      'an attribute for queries such as role:web (repeatable); MUSTER_AGENT_ATTRS=k=v,k2=v2',
      collect,
    )
    .option('--allowlist <file>', 'the commands this node runs (JSON; docs/agent.md); MUSTER_AGENT_ALLOWLIST')
    .option(
      '--enrol-token-file <file>',
      'an enrolment token, used once to get the node token; MUSTER_AGENT_ENROL_TOKEN_FILE',
    )
    .option(
      '--state-dir <dir>',
      `where the node token and journal live (default ${DEFAULT_STATE_DIR}); MUSTER_AGENT_STATE_DIR`,
    )
    .option('--config <file>', 'a JSON file with any of these settings; MUSTER_AGENT_CONFIG')
    .option(
      '--session-ttl <seconds>',
      "the session's TTL: the node is down this long after the agent dies (default 10)",
    )
    .option('--stop-grace <seconds>', 'on SIGTERM, how long a running command may finish (default 30)')
    .addHelpText(
      'after',
      `
The agent enrols once with the enrolment token (muster token create --role enrol) and
keeps the node token it gets in --state-dir (0600). It registers the node with its
tags, attributes and detected facts (hostname, addresses, os, cpus, agent version,
the allowlisted command names), keeps a session alive, and holds one outbound stream
of assignments: the node needs no inbound port. When the server goes away it
reconnects with backoff and jitter and registers again. SIGTERM: no new work; a
running command may finish for --stop-grace, then gets SIGTERM and SIGKILL.
Settings: flags, then MUSTER_AGENT_* variables, then the --config file. --ca (the
global option, or "ca" in the config file) verifies an https:// server.

Allowlist (a command name to an argument vector, never a shell string):
  {"chef-client": {"argv": ["chef-client"]},
   "restart-app": {"argv": ["systemctl", "restart", "app"], "timeout": "5m"},
   "run-recipe":  {"argv": ["chef-client", "-o"], "args": "^recipe\\\\[[a-z0-9_:]+\\\\]$"}}
  Optional per command: cwd, env, timeout, user. Anything else is reported rejected.

Examples:
  $ muster agent --server https://muster:4100 --name web-3 --tag web --tag prod \\
      --attr role=web --allowlist /etc/muster/allowlist.json --enrol-token-file /etc/muster/enrol.token
  $ MUSTER_AGENT_SERVER=http://127.0.0.1:4100 muster agent --state-dir ./agent-state --allowlist allow.json`,
    )
    .action(async (flags: AgentFlags, command: Command) => {
      const env = process.env;
      const configFile = flags.config ?? env.MUSTER_AGENT_CONFIG;
      const config: AgentConfigFile = configFile ? readConfig(configFile) : {};
      const servers = flags.server?.flatMap(splitList) ?? [];
      if (servers.length === 0) servers.push(...splitList(env.MUSTER_AGENT_SERVER));
      if (servers.length === 0 && config.server !== undefined) {
        servers.push(...(Array.isArray(config.server) ? config.server : splitList(config.server)));
      }
      if (servers.length === 0) usage('--server is required (or MUSTER_AGENT_SERVER, or "server" in --config)');
      const name = flags.name ?? env.MUSTER_AGENT_NAME ?? config.name ?? hostname().split('.')[0] ?? 'node';
      try {
        validateName(name, 'node name');
      } catch (error) {
        usage((error as Error).message);
      }
      const tags =
        flags.tag ?? (env.MUSTER_AGENT_TAGS !== undefined ? splitList(env.MUSTER_AGENT_TAGS) : (config.tags ?? []));
      const attrs = flags.attr
        ? parseAttrs(flags.attr)
        : env.MUSTER_AGENT_ATTRS !== undefined
          ? parseAttrs(splitList(env.MUSTER_AGENT_ATTRS))
          : (config.attrs ?? {});
      const allowlistFile = flags.allowlist ?? env.MUSTER_AGENT_ALLOWLIST ?? config.allowlist;
      let allowlist: Allowlist = new Map();
      if (allowlistFile) {
        try {
          allowlist = loadAllowlist(allowlistFile);
        } catch (error) {
          if (error instanceof AllowlistError) usage(error.message);
          throw error;
        }
      } else {
        ctx.warn('muster agent: no --allowlist: every command will be rejected');
      }
      const caFile = command.optsWithGlobals<{ ca?: string }>().ca ?? env.MUSTER_AGENT_CA ?? config.ca;
      const ca = caFile ? readFileSync(caFile, 'utf8') : undefined;
      const enrolTokenFile = flags.enrolTokenFile ?? env.MUSTER_AGENT_ENROL_TOKEN_FILE ?? config.enrolTokenFile;
      const agent = new Agent({
        servers,
        name,
        tags,
        attrs,
        allowlist,
        stateDir: flags.stateDir ?? env.MUSTER_AGENT_STATE_DIR ?? config.stateDir ?? DEFAULT_STATE_DIR,
        ...(enrolTokenFile ? { enrolTokenFile } : {}),
        ...(ca ? { ca } : {}),
        sessionTtlSeconds: Math.ceil(seconds(flags.sessionTtl ?? config.sessionTtl, '--session-ttl', 10)),
        stopGraceMs: seconds(flags.stopGrace ?? config.stopGrace, '--stop-grace', 30) * 1000,
        agentVersion: version,
        log: (line) => ctx.warn(line),
      });
      const stop = () => void agent.stop();
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      // The injected clock's timers do not keep the process alive (a backoff while the
      // server is away would otherwise end it): this does, until the agent has stopped.
      const alive = setInterval(() => undefined, 60_000);
      try {
        await agent.start();
      } finally {
        clearInterval(alive);
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
      }
    });
}
