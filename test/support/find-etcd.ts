import { accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';

export const ETCD_INSTALL_HINT = 'apt-get install -y etcd-server';

/**
 * The etcd binary the tests start: `MUSTER_ETCD_BIN` if set (a path; one that does
 * not exist stands for "no etcd here"), else `etcd` on PATH. Null when there is none.
 */
export function findEtcdBinary(env: NodeJS.ProcessEnv = process.env): string | null {
  const given = env['MUSTER_ETCD_BIN'];
  if (given !== undefined && given !== '') {
    try {
      accessSync(given, constants.X_OK);
      return given;
    } catch {
      return null;
    }
  }
  const found = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : null;
}
