import { findProgram } from './find-program.js';

export const CHROMIUM_INSTALL_HINT = 'apt-get install -y chromium';

/**
 * The Chromium the dashboard's browser tests drive (playwright-core launches it):
 * `MUSTER_CHROMIUM_BIN` if set (a path; one that does not exist stands for "none
 * here"), else `chromium` or `chromium-browser` on PATH. Null when there is none.
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | null {
  return findProgram('MUSTER_CHROMIUM_BIN', ['chromium', 'chromium-browser'], env);
}
