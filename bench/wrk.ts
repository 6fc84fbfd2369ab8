/**
 * Runs wrk (the C HTTP load generator, Debian package `wrk`) with a Lua script from
 * bench/wrk/ and reads the one `BENCH_RESULT {json}` line the script's done() prints.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from './paths.js';

export const WRK_INSTALL_HINT = 'install wrk with `apt-get install -y wrk` (Debian/Ubuntu)';

export interface WrkRun {
  readonly url: string;
  /** A script file name in bench/wrk/. */
  readonly script: string;
  /** Passed to the script's init(args), after `--`. */
  readonly scriptArgs: readonly string[];
  readonly seconds: number;
  readonly connections: number;
  readonly threads: number;
}

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
  readonly errors: { connect: number; read: number; write: number; status: number; timeout: number };
}

interface RawResult {
  requests: number;
  duration_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  mean_us: number;
  errors: WrkResult['errors'];
}

/** Run wrk to the end and return its numbers; throws with wrk's output if it fails. */
export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const args = [
    `--threads=${Math.min(run.threads, run.connections)}`,
    `--connections=${run.connections}`,
    `--duration=${run.seconds}s`,
    // A slow answer is a latency to report, not an error: only a stuck server times out.
    '--timeout=10s',
    `--script=${join(packageRoot(), 'bench', 'wrk', run.script)}`,
    run.url,
    '--',
    ...run.scriptArgs,
  ];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
      child.once('error', reject);
      child.once('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
    },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (code !== 0 || line === undefined) {
    throw new Error(`wrk ${args.join(' ')} failed (exit ${code}):\n${stdout}\n${stderr}`);
  }
  const raw = JSON.parse(line.slice('BENCH_RESULT '.length)) as RawResult;
  return {
    requests: raw.requests,
    seconds: raw.duration_us / 1e6,
    p50Ms: raw.p50_us / 1000,
    p90Ms: raw.p90_us / 1000,
    p99Ms: raw.p99_us / 1000,
    maxMs: raw.max_us / 1000,
    meanMs: raw.mean_us / 1000,
    errors: raw.errors,
  };
}

/** All failed requests of a run: socket errors, timeouts and non-2xx/3xx answers. */
export function errorCount(result: WrkResult): number {
  const e = result.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}
