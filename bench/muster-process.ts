/**
 * A `muster server` child process for the bench: the built CLI (bin/muster.js) on a
 * free 127.0.0.1 port, stopped with SIGTERM (SIGKILL if it hangs).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from './paths.js';

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

/** The admin token of every muster server the bench starts with auth on. */
export const BENCH_ADMIN_TOKEN = 'mst_00000000be0c_' + 'B'.repeat(43);

export interface MusterProcess {
  readonly url: string;
  readonly pid: number;
  /** What every request to it sends (the Authorization header; none without auth). */
  readonly headers: Readonly<Record<string, string>>;
  /** Its token, or null without auth. */
  readonly token: string | null;
  /** SIGTERM and wait for the exit; SIGKILL after STOP_TIMEOUT_MS. */
  stop(): Promise<void>;
}

/**
 * Start `muster server --data-dir <dataDir>` (plus `extraArgs`, such as `--etcd URL`);
 * resolves once it listens and /healthz answers 200.
 */
export async function startMuster(
  dataDir: string,
  extraArgs: readonly string[] = [],
  { auth = true }: { auth?: boolean } = {},
): Promise<MusterProcess> {
  const root = packageRoot();
  const child = spawn(
    process.execPath,
    // With tokens, as users run it: the bench's admin token is given at start, and
    // every request sends it (`headers`). `auth: false` is the comparison run.
    [
      // BENCH_SERVER_NODE_ARGS: Node options for the server only, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
      ...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      join(root, 'bin', 'muster.js'),
      'server',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      ...(auth ? [] : ['--insecure-no-auth']),
      ...extraArgs,
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        MUSTER_LISTEN: '',
        MUSTER_DATA_DIR: '',
        MUSTER_CONFIG: '',
        MUSTER_ADMIN_TOKEN: auth ? BENCH_ADMIN_TOKEN : '',
      },
    },
  );
  // Always drained: a full pipe would block the server mid-run.
  let output = '';
  const keep = (chunk: string) => {
    output = (output + chunk).slice(-8000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`muster server did not start within ${START_TIMEOUT_MS} ms:\n${output}`)),
        START_TIMEOUT_MS,
      );
      const look = () => {
        const match = /muster listening on (http:\/\/\S+)/.exec(output);
        if (match?.[1] === undefined) return;
        clearTimeout(timer);
        resolve(match[1]);
      };
      child.stdout.on('data', look);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`muster server exited (code ${child.exitCode}) during start:\n${output}`));
      });
    });
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    if (health.status !== 200) throw new Error(`muster /healthz answered ${health.status} after start`);
    if (child.pid === undefined) throw new Error('muster server has no pid');
    return {
      url,
      pid: child.pid,
      stop,
      headers: auth ? { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` } : {},
      token: auth ? BENCH_ADMIN_TOKEN : null,
    };
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
}
