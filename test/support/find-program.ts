import { accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';

/**
 * A program the tests start: the path in the environment variable `envVar` if set
 * (a path; one that does not exist stands for "none here"), else the first of
 * `names` on PATH. Null when there is none.
 */
export function findProgram(
  envVar: string,
  names: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  const given = env[envVar];
  if (given !== undefined && given !== '') {
    try {
      accessSync(given, constants.X_OK);
      return given;
    } catch {
      return null;
    }
  }
  const found = spawnSync('sh', ['-c', names.map((n) => `command -v ${n}`).join(' || ')], { encoding: 'utf8' });
  const path = found.stdout.trim().split('\n')[0] ?? '';
  return found.status === 0 && path !== '' ? path : null;
}
