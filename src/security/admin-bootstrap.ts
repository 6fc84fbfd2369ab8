/**
 * The first admin token. Automation may provide it (MUSTER_ADMIN_TOKEN or
 * --admin-token-file, as Consul's initial management token); otherwise the server
 * keeps one in `<data-dir>/admin.token` (mode 0600), created on first start and
 * registered again on every start, so the file always works. With an in-memory
 * store and nothing provided there is no folder to keep it in: the caller prints
 * it once. The token itself never goes into a log.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TokenRegistry } from './token-registry.js';

export const ADMIN_TOKEN_FILE = 'admin.token';

export interface AdminBootstrap {
  /** An admin token given by automation; registered as is. */
  readonly provided?: string | undefined;
  /** Where the server keeps the admin token it made (null: nowhere, an in-memory store). */
  readonly file: string | null;
}

export type AdminOutcome =
  | { readonly kind: 'provided' }
  | { readonly kind: 'file'; readonly file: string; readonly created: boolean }
  | { readonly kind: 'printed'; readonly token: string };

export async function bootstrapAdmin(tokens: TokenRegistry, setup: AdminBootstrap): Promise<AdminOutcome> {
  if (setup.provided !== undefined) {
    await tokens.ensureAdmin(setup.provided.trim(), 'admin (provided at start)');
    return { kind: 'provided' };
  }
  if (setup.file === null) {
    const { token } = await tokens.create({ role: 'admin', description: 'admin (in-memory server)' });
    return { kind: 'printed', token };
  }
  if (existsSync(setup.file)) {
    await tokens.ensureAdmin(readFileSync(setup.file, 'utf8').trim(), 'admin (data folder)');
    return { kind: 'file', file: setup.file, created: false };
  }
  const { token } = await tokens.create({ role: 'admin', description: 'admin (data folder)' });
  mkdirSync(dirname(setup.file), { recursive: true });
  writeFileSync(setup.file, token + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(setup.file, 0o600);
  return { kind: 'file', file: setup.file, created: true };
}
