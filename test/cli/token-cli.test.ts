import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerProcess } from './cli-harness.js';
import { assertBuilt, muster, startServerProcess } from './cli-harness.js';

/**
 * Auth as a user meets it: a new server makes its admin token and keeps it in the
 * data folder; the CLI on the same machine finds it there (run from the folder
 * that holds muster-data); tokens are made, used, listed and revoked.
 */

beforeAll(() => assertBuilt());

/** No harness token: these servers make their own, and the CLI must find it. */
const NO_TOKENS = { MUSTER_ADMIN_TOKEN: '', MUSTER_TOKEN: '' };

let servers: ServerProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of servers) await s.cli.stop('SIGTERM');
  servers = [];
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'muster-token-'));
  dirs.push(dir);
  return dir;
}

describe('tokens through the CLI', () => {
  it('a new server keeps its admin token in <data-dir>/admin.token (0600) and the local CLI uses it', async () => {
    const cwd = scratch();
    const server = await startServerProcess([], { cwd, env: NO_TOKENS });
    servers.push(server);
    await server.cli.waitFor(/admin token: created in (\S+)/);
    const file = join(cwd, 'muster-data', 'admin.token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(server.cli.stdout + server.cli.stderr).not.toContain(
      (await import('node:fs')).readFileSync(file, 'utf8').trim(),
    );
    const env = { ...NO_TOKENS, MUSTER_ENDPOINT: server.url };
    expect((await muster(['put', '/config/a', '1'], { cwd, env })).code).toBe(0);
    const who = await muster(['token', 'whoami'], { cwd, env });
    expect(who.stdout).toMatch(/role admin/);

    // Elsewhere (no muster-data in the folder) and without a token: 401, exit 1, and the message says how.
    const elsewhere = await muster(['get', '/config/a'], { cwd: scratch(), env });
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/unauthenticated.*--token|MUSTER_TOKEN/);

    // An operator token: made once, works with --token, listed without its secret, revoked.
    const made = await muster(['token', 'create', '--role', 'operator', '--description', 'ci'], { cwd, env });
    expect(made.code).toBe(0);
    const operator = made.stdout.trim();
    expect(operator).toMatch(/^mst_[0-9a-f]{12}_/);
    const id = operator.slice(4, 16);
    expect((await muster(['--token', operator, 'get', '/config/a'], { cwd: scratch(), env })).stdout.trim()).toBe('1');
    const list = await muster(['token', 'list'], { cwd, env });
    expect(list.stdout).toContain(`${id}  operator`);
    expect(list.stdout).not.toContain(operator);
    const denied = await muster(['--token', operator, 'token', 'list'], { cwd: scratch(), env });
    expect(denied.stderr).toMatch(/forbidden: role operator .*tokens:manage/);
    expect((await muster(['token', 'revoke', id], { cwd, env })).code).toBe(0);
    // The audit log names who did it.
    const audit = await muster(['audit', '--since', '1h'], { cwd, env });
    expect(audit.stdout).toMatch(/admin {2}DELETE \/v1\/tokens\/:id/);
    expect(audit.stdout).toMatch(/admin {2}PUT \/v1\/kv\/\* \/config\/a {2}200/);
    const revoked = await muster(['--token', operator, 'get', '/config/a'], { cwd: scratch(), env });
    expect(revoked.stderr).toMatch(/unauthenticated/);

    // An enrolment token, spent by a machine on its own node token.
    const enrolToken = (
      await muster(['token', 'create', '--role', 'enrol', '--uses', '1'], { cwd, env })
    ).stdout.trim();
    const enrolled = await muster(['--token', enrolToken, 'enrol', '--node', 'web-9'], { cwd: scratch(), env });
    expect(enrolled.code).toBe(0);
    const nodeToken = enrolled.stdout.trim();
    expect((await muster(['--token', nodeToken, 'token', 'whoami'], { cwd: scratch(), env })).stdout).toMatch(
      /role node \(web-9\)/,
    );
    expect((await muster(['--token', enrolToken, 'enrol', '--node', 'web-10'], { cwd: scratch(), env })).code).not.toBe(
      0,
    );

    // The same admin token again after a restart.
    await server.cli.stop('SIGTERM');
    servers = [];
    const again = await startServerProcess([], { cwd, env: NO_TOKENS });
    servers.push(again);
    await again.cli.waitFor(/admin token: kept in/);
    expect(
      (await muster(['get', '/config/a'], { cwd, env: { ...env, MUSTER_ENDPOINT: again.url } })).stdout.trim(),
    ).toBe('1');
  }, 120_000);

  it('a provided admin token (MUSTER_ADMIN_TOKEN, --admin-token-file) is the admin', async () => {
    const cwd = scratch();
    const provided = 'automation-provided-admin-secret-0123456789';
    const file = join(cwd, 'provided.token');
    writeFileSync(file, provided + '\n', { mode: 0o600 });
    const server = await startServerProcess(['--data-dir', ':memory:', '--admin-token-file', file], {
      cwd,
      env: NO_TOKENS,
    });
    servers.push(server);
    const env = { ...NO_TOKENS, MUSTER_ENDPOINT: server.url, MUSTER_TOKEN: provided };
    expect((await muster(['token', 'whoami'], { cwd, env })).stdout).toMatch(/bootstrap role admin/);
  });

  it('an in-memory server with nothing provided prints its admin token once; --insecure-no-auth warns', async () => {
    const server = await startServerProcess(['--data-dir', ':memory:'], { cwd: scratch(), env: NO_TOKENS });
    servers.push(server);
    const [, token] = await server.cli.waitFor(/admin token \(shown once, this store is in memory\): (\S+)/);
    const env = { ...NO_TOKENS, MUSTER_ENDPOINT: server.url, MUSTER_TOKEN: token ?? '' };
    expect((await muster(['put', '/a', 'b'], { cwd: scratch(), env })).code).toBe(0);

    const open = await startServerProcess(['--data-dir', ':memory:', '--insecure-no-auth'], {
      cwd: scratch(),
      env: NO_TOKENS,
    });
    servers.push(open);
    await open.cli.waitFor(/WARNING: --insecure-no-auth/, 'stderr');
    const anyone = { ...NO_TOKENS, MUSTER_ENDPOINT: open.url };
    expect((await muster(['put', '/a', 'b'], { cwd: scratch(), env: anyone })).code).toBe(0);
    expect((await muster(['token', 'whoami'], { cwd: scratch(), env: anyone })).stdout).toMatch(/auth is off/);
  });
});
