/**
 * Real etcd members for tests and the bench: the Debian `etcd` binary (package
 * `etcd-server`), on random free 127.0.0.1 ports, with temporary data folders.
 * Free of vitest imports so that bench/ can use it too.
 */
import { ETCD_INSTALL_HINT, findEtcdBinary } from './find-etcd.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartEtcdOptions {
  /** @default 1 */
  readonly members?: 1 | 3;
  /** How long to wait for the cluster to answer. @default 30000 */
  readonly startTimeoutMs?: number;
}

export interface EtcdCluster {
  /** Every member's client URL, for a client that may use any of them. */
  readonly endpoints: string[];
  /** The client URL of member `i`. */
  readonly clientUrls: readonly string[];
  /** Stop every member and delete the data folders. */
  stop(): Promise<void>;
  /** SIGKILL member `i` (no graceful shutdown) and wait for it to exit. */
  kill(i: number): Promise<void>;
  /** Start member `i` again on its ports and data folder; resolves when it answers. */
  restart(i: number): Promise<void>;
  /** True while member `i` is running. */
  isRunning(i: number): boolean;
  /** The index of the member that currently leads the raft group (asked of a running member). */
  leaderIndex(): Promise<number>;
}

const INSTALL_HINT = `the etcd binary was not found on PATH; install it with \`${ETCD_INSTALL_HINT}\``;

interface Member {
  readonly name: string;
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  process: ChildProcess | null;
  exited: Promise<void>;
  stderr: string;
}

/** Start an etcd cluster of 1 or 3 members; the caller must `stop()` it. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const binary = findEtcd();
  const count = options.members ?? 1;
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const root = await mkdtemp(join(tmpdir(), 'muster-etcd-'));
  const ports = await freePorts(count * 2);
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    members.push({
      name: `m${i}`,
      dataDir: join(root, `m${i}`),
      clientPort: ports[2 * i] ?? 0,
      peerPort: ports[2 * i + 1] ?? 0,
      process: null,
      exited: Promise.resolve(),
      stderr: '',
    });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const token = `muster-test-${process.pid}-${Date.now()}`;

  const launch = (member: Member): void => {
    const args = [
      `--name=${member.name}`,
      `--data-dir=${member.dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${member.clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${member.clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${member.peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${member.peerPort}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${token}`,
      // Fast elections: loopback round trips are well under a millisecond.
      '--heartbeat-interval=25',
      '--election-timeout=250',
      `--quota-backend-bytes=${256 * 1024 * 1024}`,
      '--snapshot-count=10000',
      '--logger=zap',
      '--log-level=error',
    ];
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    member.process = child;
    member.stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      // Keep the tail only: enough to explain a failed start.
      member.stderr = (member.stderr + chunk).slice(-4000);
    });
    member.exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (member.process === child) member.process = null;
        resolve();
      });
    });
  };

  const killMember = async (member: Member, signal: NodeJS.Signals): Promise<void> => {
    const child = member.process;
    if (!child) return;
    child.kill(signal);
    await member.exited;
  };

  const stop = async (): Promise<void> => {
    await Promise.all(members.map((m) => killMember(m, 'SIGTERM')));
    await rm(root, { recursive: true, force: true });
  };

  for (const member of members) launch(member);
  try {
    await Promise.all(members.map((m) => waitHealthy(m, timeoutMs)));
  } catch (error) {
    await Promise.all(members.map((m) => killMember(m, 'SIGKILL')));
    await rm(root, { recursive: true, force: true });
    throw error;
  }

  const memberAt = (i: number): Member => {
    const member = members[i];
    if (!member) throw new RangeError(`no etcd member ${i} (the cluster has ${members.length})`);
    return member;
  };

  const clientUrls = members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  return {
    endpoints: [...clientUrls],
    clientUrls,
    stop,
    kill: (i) => killMember(memberAt(i), 'SIGKILL'),
    restart: async (i) => {
      const member = memberAt(i);
      if (member.process) throw new Error(`etcd member ${i} is still running`);
      // With its data folder in place, the member ignores the --initial-* flags and rejoins.
      launch(member);
      await waitHealthy(member, timeoutMs);
    },
    isRunning: (i) => memberAt(i).process !== null,
    leaderIndex: async () => {
      const statuses = await Promise.all(
        members.map(async (m) => (m.process ? memberStatus(m.clientPort).catch(() => null) : null)),
      );
      const leader = statuses.find((s) => s !== null && s.leader !== '0')?.leader;
      const index = statuses.findIndex((s) => s !== null && s.memberId === leader);
      if (index < 0) throw new Error('no etcd member reports itself as the leader');
      return index;
    },
  };
}

function findEtcd(): string {
  const path = findEtcdBinary();
  if (path === null) {
    // Never a silent skip: without etcd, vitest.config.ts leaves these files out
    // (saying so loudly) except on CI, where they run and fail here.
    throw new Error(process.env['CI'] === 'true' ? `CI: ${INSTALL_HINT}` : INSTALL_HINT);
  }
  return path;
}

/** Ports the kernel hands out for port 0, released again just before etcd binds them. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address for a probe socket');
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** A member's own id and the leader it knows of, from etcd's JSON gateway. */
async function memberStatus(clientPort: number): Promise<{ memberId: string; leader: string }> {
  const response = await fetch(`http://127.0.0.1:${clientPort}/v3/maintenance/status`, {
    method: 'POST',
    body: '{}',
    signal: AbortSignal.timeout(2000),
  });
  const body = (await response.json()) as { header?: { member_id?: string }; leader?: string };
  return { memberId: body.header?.member_id ?? '', leader: body.leader ?? '0' };
}

/** Poll the member's /health until it reports a leader, failing early if it exits. */
async function waitHealthy(member: Member, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void member.exited.then(() => {
    exited = true;
  });
  for (;;) {
    if (exited || member.process === null) {
      throw new Error(`etcd member ${member.name} exited during start:\n${member.stderr}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${member.clientPort}/health`, {
        signal: AbortSignal.timeout(1000),
      });
      const body = (await response.json()) as { health?: string };
      if (response.ok && body.health === 'true') return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`etcd member ${member.name} did not become healthy within ${timeoutMs} ms:\n${member.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
