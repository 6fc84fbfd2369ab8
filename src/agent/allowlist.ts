/**
 * The agent's allowlist: the only commands a node runs, each an argument vector
 * (never a shell string), optionally with a pattern the extra arguments must
 * match, a working folder, environment, timeout and user.
 *
 *     {
 *       "chef-client": { "argv": ["chef-client"] },
 *       "restart-app": { "argv": ["systemctl", "restart", "app"] },
 *       "run-recipe": { "argv": ["chef-client", "-o"], "args": "^recipe\\[[a-z0-9_:]+\\]$" }
 *     }
 */
import { readFileSync } from 'node:fs';
import { parseDuration } from '../core/duration.js';

export interface AllowedCommand {
  readonly name: string;
  readonly argv: readonly string[];
  /** Each extra argument must match this (anchor it: ^...$); absent: no extra arguments allowed. */
  readonly args: RegExp | null;
  readonly cwd: string | null;
  readonly env: Readonly<Record<string, string>>;
  /** The command's own time limit, ms (the job's may be shorter). */
  readonly timeoutMs: number | null;
  readonly user: { readonly name: string; readonly uid: number; readonly gid: number } | null;
}

export type Allowlist = ReadonlyMap<string, AllowedCommand>;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const FIELDS = ['argv', 'args', 'cwd', 'env', 'timeout', 'user'];

/** Read and check an allowlist file; an Error naming the file and the entry at fault. */
export function loadAllowlist(file: string): Allowlist {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the allowlist ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`the allowlist ${file} is not JSON: ${(error as Error).message}`);
  }
  return parseAllowlist(raw, file);
}

export function parseAllowlist(raw: unknown, source = 'allowlist'): Allowlist {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(
      `${source}: an allowlist is an object of command names, such as {"chef-client": {"argv": ["chef-client"]}}`,
    );
  }
  const list = new Map<string, AllowedCommand>();
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const at = `${source}: "${name}"`;
    if (!NAME.test(name)) throw new Error(`${at}: a command name is letters, digits, ".", "_", ":" or "-"`);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error(`${at}: expected {"argv": [...]}`);
    const entry = value as Record<string, unknown>;
    for (const key of Object.keys(entry))
      if (!FIELDS.includes(key)) throw new Error(`${at}: unknown field "${key}" (known: ${FIELDS.join(', ')})`);
    const argv = entry.argv;
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string' || a === '')) {
      throw new Error(`${at}: argv is a non-empty list of strings (the program, then its arguments; no shell)`);
    }
    let args: RegExp | null = null;
    if (entry.args !== undefined) {
      if (typeof entry.args !== 'string') throw new Error(`${at}: args is a regular expression (a string)`);
      try {
        args = new RegExp(entry.args);
      } catch (error) {
        throw new Error(`${at}: args is not a valid regular expression: ${(error as Error).message}`);
      }
    }
    if (entry.cwd !== undefined && typeof entry.cwd !== 'string') throw new Error(`${at}: cwd is a folder`);
    const env: Record<string, string> = {};
    if (entry.env !== undefined) {
      if (typeof entry.env !== 'object' || entry.env === null || Array.isArray(entry.env))
        throw new Error(`${at}: env is an object of variables`);
      for (const [k, v] of Object.entries(entry.env)) {
        if (typeof v !== 'string') throw new Error(`${at}: env.${k} must be a string`);
        env[k] = v;
      }
    }
    let timeoutMs: number | null = null;
    if (entry.timeout !== undefined) {
      try {
        timeoutMs = parseDuration(entry.timeout as string | number, 'timeout');
      } catch {
        throw new Error(`${at}: timeout is a duration such as 30m`);
      }
    }
    let user: AllowedCommand['user'] = null;
    if (entry.user !== undefined) {
      if (typeof entry.user !== 'string') throw new Error(`${at}: user is a user name`);
      user = lookupUser(entry.user, at);
    }
    list.set(name, {
      name,
      argv: argv as string[],
      args,
      cwd: (entry.cwd as string | undefined) ?? null,
      env,
      timeoutMs,
      user,
    });
  }
  return list;
}

function lookupUser(name: string, at: string): { name: string; uid: number; gid: number } {
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    throw new Error(`${at}: cannot look up the user ${name} (no /etc/passwd)`);
  }
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`${at}: no user ${name} on this machine`);
}

/** What to run for a command and its extra arguments, or why not (reported as `rejected`). */
export function resolveCommand(
  allowlist: Allowlist,
  command: string,
  args: readonly string[],
): { ok: true; entry: AllowedCommand; argv: string[] } | { ok: false; reason: string } {
  const entry = allowlist.get(command);
  if (!entry) return { ok: false, reason: `${command} is not in this node's allowlist` };
  if (args.length > 0 && entry.args === null) {
    return {
      ok: false,
      reason: `${command} takes no extra arguments here (its allowlist entry has no "args" pattern)`,
    };
  }
  for (const arg of args) {
    if (!entry.args!.test(arg)) {
      return {
        ok: false,
        reason: `the argument ${JSON.stringify(arg)} does not match ${command}'s pattern ${entry.args!.source}`,
      };
    }
  }
  return { ok: true, entry, argv: [...entry.argv, ...args] };
}
