import { accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';

export const CHROMIUM_INSTALL_HINT = 'apt-get install -y chromium';

/**
 * The Chromium the dashboard's browser tests drive (playwright-core launches it):
 * `MUSTER_CHROMIUM_BIN` if set (a path; one that does not exist stands for "none
 * here"), else `chromium` or `chromium-browser` on PATH. Null when there is none.
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | null {
  const given = env['MUSTER_CHROMIUM_BIN'];
  if (given !== undefined && given !== '') {
    try {
      accessSync(given, constants.X_OK);
      return given;
    } catch {
      return null;
    }
  }
  const found = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' });
  const path = found.stdout.trim().split('\n')[0] ?? '';
  return found.status === 0 && path !== '' ? path : null;
}
