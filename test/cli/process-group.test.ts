import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningCli, ServerProcess } from './cli-harness.js';
import { assertBuilt, spawnMuster, startServerProcess, TEST_ADMIN_TOKEN } from './cli-harness.js';

/** Whether `pid` is a running process (a zombie, which nothing may reap here, is not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A command run under `muster lock` (semaphore, elect, once) runs in a process group
 * of its own, and whatever stops it stops the whole group: the grandchild started by
 * `sh -c` below must never outlive the lock (two holders doing the work at once).
 */
describe('a held command and everything it started stop together (real processes)', () => {
  let dir: string;
  let server: ServerProcess;
  const grandchildren: number[] = [];
  const holders: RunningCli[] = [];
  let serial = 0;

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'muster-pgroup-'));
    server = await startServerProcess(['--data-dir', ':memory:']);
  });
  afterEach(async () => {
    for (const pid of grandchildren.splice(0)) if (running(pid)) process.kill(pid, 'SIGKILL');
    for (const holder of holders.splice(0)) if (holder.child.exitCode === null) await holder.stop('SIGKILL');
  });
  afterAll(async () => {
    await server.cli.stop('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * `muster <verb> NAME -- sh -c '<prelude>; sleep 300 & echo $! > PIDFILE; wait; true'`,
   * resolved once the grandchild (the sleep) runs; the sh itself dies on SIGTERM
   * while its sleep would go on, unless the whole group is signalled.
   */
  async function holdWithGrandchild(
    verb: string[],
    options: { prelude?: string; grace?: string } = {},
  ): Promise<{ holder: RunningCli; grandchild: number }> {
    const pidFile = join(dir, `grandchild-${++serial}`);
    const script = `${options.prelude ?? ':'}; sleep 300 & echo $! > ${pidFile}; echo started; wait; true`;
    const holder = spawnMuster([...verb, '--ttl', '2s', '--grace', options.grace ?? '1s', '--', 'sh', '-c', script], {
      env: { MUSTER_ENDPOINT: server.url },
    });
    holders.push(holder);
    await holder.waitFor(/started/);
    await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 'the pid file');
    const grandchild = Number(readFileSync(pidFile, 'utf8').trim());
    grandchildren.push(grandchild);
    expect(running(grandchild)).toBe(true);
    return { holder, grandchild };
  }

  it('lock lost (its lease revoked): the grandchild is stopped too, muster exits 5', async () => {
    const { holder, grandchild } = await holdWithGrandchild(['lock', 'pg-lost']);
    const status = (await (
      await fetch(`${server.url}/v1/locks/pg-lost`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    ).json()) as { holder: { lease: string } };
    await fetch(`${server.url}/v1/leases/${status.holder.lease}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    const result = await holder.exited;
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/lost|deleted/);
    expect(running(grandchild)).toBe(false);
  });

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const) {
    it(`${signal} to muster lock reaches the whole group, then the lock is released`, async () => {
      const { holder, grandchild } = await holdWithGrandchild(['lock', `pg-${signal}`]);
      holder.child.kill(signal);
      await holder.exited;
      expect(running(grandchild)).toBe(false);
      const status = (await (
        await fetch(`${server.url}/v1/locks/pg-${signal}`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
      ).json()) as { holder: unknown };
      expect(status.holder).toBeNull();
    });
  }

  it('a grandchild that ignores SIGTERM is killed after the grace period', async () => {
    const { holder, grandchild } = await holdWithGrandchild(['lock', 'pg-stubborn'], {
      prelude: 'trap "" TERM',
      grace: '1s',
    });
    const sentAt = Date.now();
    holder.child.kill('SIGTERM');
    await holder.exited;
    expect(running(grandchild)).toBe(false);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(900);
  });

  it('a command that exits leaving a background job: the job is stopped before the lock is given back', async () => {
    const pidFile = join(dir, 'left-behind');
    const holder = spawnMuster(
      ['lock', 'pg-left', '--grace', '1s', '--', 'sh', '-c', `sleep 300 & echo $! > ${pidFile}; exit 7`],
      { env: { MUSTER_ENDPOINT: server.url } },
    );
    holders.push(holder);
    const result = await holder.exited;
    const grandchild = Number(readFileSync(pidFile, 'utf8').trim());
    grandchildren.push(grandchild);
    expect(result.code).toBe(7);
    expect(running(grandchild)).toBe(false);
  });

  it('semaphore, elect and once stop the whole group too', async () => {
    for (const verb of [
      ['semaphore', 'pg-sem', '--limit', '2'],
      ['elect', 'pg-elect', '--value', 'me'],
      ['once', 'pg-once'],
    ]) {
      const { holder, grandchild } = await holdWithGrandchild(verb);
      holder.child.kill('SIGTERM');
      await holder.exited;
      expect(running(grandchild), verb.join(' ')).toBe(false);
    }
  });
});
