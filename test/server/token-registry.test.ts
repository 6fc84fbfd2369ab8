import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { systemClock } from '../../src/core/clock.js';
import { UnauthenticatedError } from '../../src/core/errors.js';
import { TokenRegistry } from '../../src/security/token-registry.js';
import { sameString } from '../../src/security/token-secret.js';

/**
 * Two registries on one store stand for two servers in front of one etcd cluster:
 * a token made on one works on the other, and one revoked on one stops working on
 * the other, also while requests keep arriving there.
 */

const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

async function twoServers(): Promise<[TokenRegistry, TokenRegistry]> {
  const backend = SqliteBackend.open({ dataDir: ':memory:' });
  const a = new TokenRegistry(backend, systemClock);
  const b = new TokenRegistry(backend, systemClock);
  await a.start();
  await b.start();
  closing.push(async () => {
    a.stop();
    b.stop();
    await backend.close();
  });
  return [a, b];
}

describe('tokens shared by several servers', () => {
  it('a token revoked on one server is refused by the other, with requests arriving there all along', async () => {
    const [a, b] = await twoServers();
    const { token, info } = await a.create({ role: 'operator' });
    expect((await b.authenticate(token)).tokenId).toBe(info.id);
    expect(b.authenticateNow(token)?.tokenId).toBe(info.id);

    let refusedAt: number | null = null;
    let acceptedAfterRefusal = 0;
    let stop = false;
    const hammer = async () => {
      while (!stop) {
        try {
          await b.authenticate(token);
          if (refusedAt !== null) acceptedAfterRefusal++;
        } catch (error) {
          expect(error).toBeInstanceOf(UnauthenticatedError);
          refusedAt ??= Date.now();
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const clients = Array.from({ length: 8 }, () => hammer());
    await new Promise((resolve) => setTimeout(resolve, 50));
    const revokedAt = Date.now();
    await a.revoke(info.id);
    for (let i = 0; i < 200 && refusedAt === null; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    stop = true;
    await Promise.all(clients);
    expect(refusedAt, 'the other server never refused the revoked token').not.toBeNull();
    expect((refusedAt ?? Infinity) - revokedAt).toBeLessThan(1000);
    expect(acceptedAfterRefusal, 'accepted again after it was refused').toBe(0);
    // Gone from the other server's cache (it must read the store, which refuses it).
    expect(b.authenticateNow(token)).toBeUndefined();
    await expect(b.authenticate(token)).rejects.toBeInstanceOf(UnauthenticatedError);
  });
});

describe('a token proven once', () => {
  it('is still refused with a wrong secret of the same id or length, and its proven secret goes with its record', async () => {
    const [a] = await twoServers();
    const { token, info } = await a.create({ role: 'reader' });
    expect(a.authenticateNow(token)?.tokenId).toBe(info.id);
    // Now the secret is proven: every wrong variant of it is still refused.
    const secret = token.slice(-43);
    const flipped = (i: number) => {
      const c = secret[i] === 'A' ? 'B' : 'A';
      return token.slice(0, -43) + secret.slice(0, i) + c + secret.slice(i + 1);
    };
    for (const wrong of [flipped(0), flipped(21), flipped(42), token.slice(0, -1), token + 'x']) {
      // Refused at once, or not in the cache (a malformed one reads as the bootstrap id's): never a principal.
      let now: unknown;
      try {
        now = a.authenticateNow(wrong);
      } catch (error) {
        expect(error).toBeInstanceOf(UnauthenticatedError);
      }
      expect(now).toBeUndefined();
      await expect(a.authenticate(wrong)).rejects.toBeInstanceOf(UnauthenticatedError);
    }
    expect(a.authenticateNow(token)?.tokenId).toBe(info.id);
  });

  it('sameString compares by content and length only', () => {
    expect(sameString('abc', 'abc')).toBe(true);
    expect(sameString('abc', 'abd')).toBe(false);
    expect(sameString('abc', 'ab')).toBe(false);
    expect(sameString('', '')).toBe(true);
  });
});
