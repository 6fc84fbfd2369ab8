/**
 * The agent's allowlist (docs/agent.md): command names mapped to an argument
 * vector, never a shell string. `{"run-recipe": {"argv": ["chef-client", "-o"],
 * "args": "^recipe\\[[a-z0-9_:]+\\]$", "cwd": "/", "env": {"K": "V"},
 * "timeout": "30m", "user": "deploy"}}`. Loaded and checked once at start: a
 * bad file stops the agent with a message naming the entry and the field.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Assignment } from '../api/agent-protocol.js';
import { parseDuration } from '../core/duration.js';

export interface AllowedCommand {
  readonly name: string;
  readonly argv: readonly string[];
  /** Every extra argument must match this (anchor it yourself); absent: no extra arguments. */
  readonly args: RegExp | null;
  readonly cwd?: string;
  readonly env: Readonly<Record<string, string>>;
  /** The command's own timeout, ms (a job's shorter one wins). */
  readonly timeoutMs?: number;
  readonly user?: { readonly name: string; readonly uid: number; readonly gid: number };
}

export type Allowlist = ReadonlyMap<string, AllowedCommand>;

export class AllowlistError extends Error {}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const FIELDS = new Set(['argv', 'args', 'cwd', 'env', 'timeout', 'user']);

function lookupUser(name: string, where: string): { name: string; uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('not a number');
    return { name, uid, gid };
  } catch {
    throw new AllowlistError(`${where}: user: no such user ${JSON.stringify(name)} on this machine`);
  }
}

/** Check a parsed allowlist (`file` names it in messages). */
export function parseAllowlist(data: unknown, file = 'allowlist'): Allowlist {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new AllowlistError(`${file}: expected an object mapping command names to {"argv": [...]}`);
  }
  const out = new Map<string, AllowedCommand>();
  for (const [name, entry] of Object.entries(data as Record<string, unknown>)) {
    const where = `${file}: ${JSON.stringify(name)}`;
    if (!NAME.test(name))
      throw new AllowlistError(`${where}: a command name is 1-128 letters, digits, ".", "_", ":", "-"`);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new AllowlistError(`${where}: expected an object such as {"argv": ["systemctl", "restart", "app"]}`);
    }
    const e = entry as Record<string, unknown>;
    for (const field of Object.keys(e)) {
      if (!FIELDS.has(field)) {
        throw new AllowlistError(
          `${where}: unknown field ${JSON.stringify(field)} (argv, args, cwd, env, timeout, user)`,
        );
      }
    }
    const argv = e.argv;
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
      throw new AllowlistError(
        `${where}: argv must be a non-empty list of strings (the program and its arguments; no shell)`,
      );
    }
    if ((argv[0] as string).length === 0) throw new AllowlistError(`${where}: argv[0] (the program) is empty`);
    let args: RegExp | null = null;
    if (e.args !== undefined) {
      if (typeof e.args !== 'string')
        throw new AllowlistError(`${where}: args must be a regular expression as a string`);
      try {
        args = new RegExp(e.args, 'u');
      } catch (error) {
        throw new AllowlistError(`${where}: args is not a valid regular expression: ${(error as Error).message}`);
      }
    }
    if (e.cwd !== undefined && (typeof e.cwd !== 'string' || !isAbsolute(e.cwd))) {
      throw new AllowlistError(`${where}: cwd must be an absolute path`);
    }
    const env: Record<string, string> = {};
    if (e.env !== undefined) {
      if (typeof e.env !== 'object' || e.env === null || Array.isArray(e.env)) {
        throw new AllowlistError(`${where}: env must be an object of strings`);
      }
      for (const [k, v] of Object.entries(e.env as Record<string, unknown>)) {
        if (typeof v !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
          throw new AllowlistError(`${where}: env.${k} must be a string under a variable name`);
        }
        env[k] = v;
      }
    }
    let timeoutMs: number | undefined;
    if (e.timeout !== undefined) {
      try {
        timeoutMs = parseDuration(e.timeout as string | number, 'timeout');
      } catch (error) {
        throw new AllowlistError(`${where}: timeout: ${(error as Error).message}`);
      }
      if (timeoutMs <= 0) throw new AllowlistError(`${where}: timeout must be above zero`);
    }
    let user: AllowedCommand['user'];
    if (e.user !== undefined) {
      if (typeof e.user !== 'string' || e.user.length === 0)
        throw new AllowlistError(`${where}: user must be a user name`);
      user = lookupUser(e.user, where);
    }
    out.set(name, {
      name,
      argv: argv as string[],
      args,
      env,
      ...(e.cwd !== undefined ? { cwd: e.cwd as string } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(user ? { user } : {}),
    });
  }
  return out;
}

/** Read and check an allowlist file. */
export function loadAllowlist(file: string): Allowlist {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AllowlistError(`cannot read the allowlist ${file}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new AllowlistError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  return parseAllowlist(data, file);
}

/** What to run for an assignment, or why it is refused. */
export type Resolution =
  | { readonly ok: true; readonly command: AllowedCommand; readonly argv: string[]; readonly timeoutMs: number }
  | { readonly ok: false; readonly reason: string };

export function resolveAssignment(allowlist: Allowlist, assignment: Assignment): Resolution {
  const command = allowlist.get(assignment.command);
  if (!command)
    return { ok: false, reason: `command ${JSON.stringify(assignment.command)} is not in this node's allowlist` };
  if (assignment.args.length > 0) {
    if (command.args === null) {
      return { ok: false, reason: `command ${JSON.stringify(command.name)} takes no extra arguments on this node` };
    }
    for (const arg of assignment.args) {
      if (!command.args.test(arg)) {
        return {
          ok: false,
          reason: `argument ${JSON.stringify(arg.slice(0, 200))} does not match the allowlist's pattern ${command.args.source} for ${command.name}`,
        };
      }
    }
  }
  const timeoutMs = Math.min(assignment.timeoutMs, command.timeoutMs ?? Infinity);
  return { ok: true, command, argv: [...command.argv, ...assignment.args], timeoutMs };
}
