import { afterEach, describe, expect, it } from 'vitest';
import type { LeaseId } from '../../src/core/backend.js';
import { ManualClock } from '../../src/core/clock.js';
import { BackendUnavailableError, KeyNotFoundError, LeaseNotFoundError } from '../../src/core/errors.js';
import type { WireLeaseGrant } from '../../src/api/wire.js';
import type { CallOptions } from '../../src/client/muster-client.js';
import { MusterClient } from '../../src/client/muster-client.js';
import { Session } from '../../src/client/session.js';
import { TcpProxy } from './tcp-proxy.js';
import { startTestServer } from './test-server.js';

/** A client that tells the test when each keepalive has been answered (or has failed). */
class ObservedClient extends MusterClient {
  private waiters: (() => void)[] = [];
  keepalives = 0;

  override async keepAlive(id: LeaseId, options?: CallOptions): Promise<WireLeaseGrant> {
    try {
      return await super.keepAlive(id, options);
    } finally {
      this.keepalives++;
      // Tell the test only after the session has handled this answer (scheduled its next keepalive).
      for (const waiter of this.waiters.splice(0)) setImmediate(waiter);
    }
  }

  /** Resolves after the next keepalive settles. */
  nextKeepalive(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

const signalled = (signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve())));

describe('Session', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup() {
    // One clock for the store's lease expiry and the session's keepalives.
    const clock = new ManualClock();
    const server = await startTestServer({ clock });
    cleanups.push(() => server.close());
    return { clock, server, client: new ObservedClient({ endpoints: server.url }) };
  }

  it('keeps its lease alive every ttl/3, well past the TTL, and its keys with it', async () => {
    const { clock, client } = await setup();
    const session = await Session.start(client, { ttlSeconds: 3, clock });
    cleanups.push(() => session.close());
    await client.put('/session/me', 'here', { lease: session.leaseId });
    for (let i = 0; i < 6; i++) {
      const answered = client.nextKeepalive();
      clock.advance(1000);
      await answered;
    }
    expect(client.keepalives).toBe(6);
    expect(session.state).toBe('ALIVE');
    expect(session.lost.aborted).toBe(false);
    expect(await client.getText('/session/me')).toBe('here');
  });

  it('keeps a lease alive whose TTL is not a multiple of 3 seconds', async () => {
    const { clock, client } = await setup();
    const session = await Session.start(client, { ttlSeconds: 5, clock });
    cleanups.push(() => session.close());
    for (let i = 0; i < 4; i++) {
      const answered = client.nextKeepalive();
      clock.advance(1667);
      await answered;
    }
    expect(session.state).toBe('ALIVE');
    expect((await client.leaseInfo(session.leaseId)).ttl).toBe(5);
  });

  it('is lost when a keepalive finds the lease gone', async () => {
    const { clock, client } = await setup();
    let reported: Error | null = null;
    const session = await Session.start(client, { ttlSeconds: 3, clock, onLost: (reason) => (reported = reason) });
    await client.revokeLease(session.leaseId);
    clock.advance(1000);
    await signalled(session.lost);
    expect(session.state).toBe('LOST');
    expect(session.lostReason).toBeInstanceOf(LeaseNotFoundError);
    expect(reported).toBe(session.lostReason);
  });

  it('is lost when the server has been unreachable for longer than the TTL', async () => {
    const { clock, server } = await setup();
    const proxy = await TcpProxy.start(server.port);
    const client = new ObservedClient({ endpoints: proxy.url, requestTimeoutMs: 2000 });
    const session = await Session.start(client, { ttlSeconds: 3, clock });
    await proxy.close();

    const failed = client.nextKeepalive();
    clock.advance(1000);
    await failed;
    expect(session.state).toBe('ALIVE');
    const failedAgain = client.nextKeepalive();
    clock.advance(1000);
    await failedAgain;
    expect(session.lost.aborted).toBe(false);
    clock.advance(1000);
    await signalled(session.lost);
    expect(session.lostReason).toBeInstanceOf(BackendUnavailableError);
    expect(session.lostReason?.message).toContain(session.leaseId);
  });

  it('close() revokes the lease and deletes its keys, without reporting a loss', async () => {
    const { clock, client } = await setup();
    const session = await Session.start(client, { ttlSeconds: 10, clock });
    await client.put('/session/temp', 'x', { lease: session.leaseId });
    await session.close();
    expect(session.state).toBe('CLOSED');
    expect(session.lost.aborted).toBe(false);
    await expect(client.leaseInfo(session.leaseId)).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(client.get('/session/temp')).rejects.toBeInstanceOf(KeyNotFoundError);
    await session.close();
  });

  it('attaches to an existing lease, learning its TTL', async () => {
    const { clock, client } = await setup();
    const grant = await client.grantLease(6);
    const session = await Session.attach(client, grant.id, { clock });
    cleanups.push(() => session.close());
    expect(session.ttlSeconds).toBe(6);
    const answered = client.nextKeepalive();
    clock.advance(2000);
    await answered;
    expect(client.keepalives).toBe(2);
    await expect(Session.attach(client, 'deadbeef', { clock })).rejects.toBeInstanceOf(LeaseNotFoundError);
  });
});
