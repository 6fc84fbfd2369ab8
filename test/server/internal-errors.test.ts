/**
 * An unexpected error answers 500 `internal` without its details, and is logged
 * with them, on every route (the kv routes have an error handler of their own for
 * oversized values; everything else must still reach the app's one handler).
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { buildApp } from '../../src/server/build-app.js';

describe('internal errors', () => {
  it.each([
    ['GET', '/v1/kv/config/x'],
    ['GET', '/v1/kv/config/?prefix=true'],
    ['GET', '/v1/locks/db'],
  ] as const)('%s %s: 500 internal, details in the log only', async (method, url) => {
    const backend = SqliteBackend.open({ dataDir: ':memory:' });
    backend.range = () => Promise.reject(new Error('disk on fire'));
    let log = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        log += chunk.toString();
        done();
      },
    });
    const app = await buildApp({ backend, auth: 'off', logger: { level: 'error', stream } });
    try {
      const res = await app.inject({ method, url });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: { code: 'internal', message: 'internal error: see the server log' } });
      expect(log).toContain('request failed');
      expect(log).toContain('disk on fire');
    } finally {
      await app.close();
      await backend.close();
    }
  });
});
