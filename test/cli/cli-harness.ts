import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/muster.js');

/** Fail early, with the fix, when dist/ is missing or older than the CLI and client sources. */
export function assertBuilt(): void {
  const built = join(ROOT, 'dist/src/cli/run.js');
  let builtAt: number;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {
    throw new Error(`${built} is missing: run "npm run build" before the CLI tests`);
  }
  const newest = ['src/cli', 'src/client', 'src/server'].flatMap((dir) => sourceTimes(join(ROOT, dir)));
  if (newest.some((t) => t > builtAt))
    throw new Error('dist/ is older than src/: run "npm run build" before the CLI tests');
}

function sourceTimes(dir: string): number[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => statSync(join(e.parentPath, e.name)).mtimeMs);
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Written to stdin, which is then closed; absent: stdin is empty. */
  readonly input?: string | Uint8Array;
  readonly env?: Record<string, string>;
  readonly cwd?: string;
}

/** Start `muster ARGS` and return the process, its output so far, and its exit. */
/** The admin token of every server the harness starts (see spawnMuster). */
export const TEST_ADMIN_TOKEN = 'mst_000000000001_' + 'A'.repeat(43);

export function spawnMuster(args: readonly string[], options: CliOptions = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: {
      ...process.env,
      MUSTER_ENDPOINT: '',
      MUSTER_LISTEN: '',
      MUSTER_DATA_DIR: '',
      MUSTER_CONFIG: '',
      // Servers started here take this admin token, and commands send it; tests of
      // tokens themselves override both (test/cli/token-cli.test.ts).
      MUSTER_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      MUSTER_TOKEN: TEST_ADMIN_TOKEN,
      MUSTER_CLIENT_CONFIG: '/nonexistent/muster-test-config.json',
      ...options.env,
    },
  });
  return new RunningCli(child, options.input);
}

/** Run `muster ARGS` to the end. */
export function muster(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return spawnMuster(args, options).exited;
}

export class RunningCli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;
  private watchers: (() => void)[] = [];

  constructor(
    readonly child: ChildProcessWithoutNullStreams,
    input: string | Uint8Array | undefined,
  ) {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.notify();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.notify();
    });
    child.stdin.end(input);
    this.exited = new Promise((resolveExit) => {
      child.on('close', (code) => {
        this.notify();
        resolveExit({ code, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Resolves when stdout (or stderr) matches `pattern`; rejects if the process exits first. */
  async waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
    for (;;) {
      const match = this[stream].match(pattern);
      if (match) return match;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(
          `muster exited (${this.child.exitCode}) before printing ${pattern}:\n${this.stdout}\n${this.stderr}`,
        );
      }
      await new Promise<void>((resolveChange) => this.watchers.push(resolveChange));
    }
  }

  /** Send a signal and wait for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<CliResult> {
    this.child.kill(signal);
    return this.exited;
  }

  private notify(): void {
    for (const watcher of this.watchers.splice(0)) watcher();
  }
}

/** A real `muster server` process on a free port. */
export interface ServerProcess {
  readonly url: string;
  readonly cli: RunningCli;
}

/** Start `muster server ARGS` on `port` (default: any free one) and wait for its URL. */
export async function startServerProcess(
  args: readonly string[],
  options: CliOptions = {},
  port: number | string = 0,
): Promise<ServerProcess> {
  const cli = spawnMuster(['server', '--listen', `127.0.0.1:${port}`, ...args], options);
  const match = await cli.waitFor(/muster listening on (https?:\/\/\S+)/);
  return { url: match[1] ?? '', cli };
}
