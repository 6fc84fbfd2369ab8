import { findProgram } from './find-program.js';

export const ETCD_INSTALL_HINT = 'apt-get install -y etcd-server';

/**
 * The etcd binary the tests start: `MUSTER_ETCD_BIN` if set (a path; one that does
 * not exist stands for "no etcd here"), else `etcd` on PATH. Null when there is none.
 */
export function findEtcdBinary(env: NodeJS.ProcessEnv = process.env): string | null {
  return findProgram('MUSTER_ETCD_BIN', ['etcd'], env);
}
