import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MusterClient } from '../../src/client/muster-client.js';
import { MusterServer } from '../../src/server/muster-server.js';
import { assertBuilt, muster, startServerProcess, TEST_ADMIN_TOKEN } from '../cli/cli-harness.js';

/**
 * HTTPS with certificates made at test time (openssl): a private CA, a server
 * certificate for 127.0.0.1 and a client certificate. The client and the CLI
 * verify the server with --ca; a server with --tls-client-ca refuses clients
 * without a certificate its CA signed.
 */

let dir: string;
const file = (name: string) => join(dir, name);
const pem = (name: string) => readFileSync(file(name), 'utf8');

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'muster-tls-'));
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca-key.pem',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=muster test CA',
  );
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const [name, ext] of [
    ['server', 'server.ext'],
    ['client', null],
  ] as const) {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}-key.pem`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca-key.pem',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      ...(ext ? ['-extfile', ext] : []),
    );
  }
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTPS', () => {
  it('serves https; a client with the CA verifies it, one without refuses it', async () => {
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
      tls: { cert: pem('server.pem'), key: pem('server-key.pem') },
    });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const client = new MusterClient({ endpoints: server.url, tls: { ca: pem('ca.pem') } });
      await client.put('/tls/a', 'over tls');
      expect(new TextDecoder().decode((await client.get('/tls/a'))?.value)).toBe('over tls');
      const trusting = new MusterClient({ endpoints: server.url });
      await expect(trusting.get('/tls/a')).rejects.toThrow();
    } finally {
      await server.stop();
    }
  });

  it('with a client CA, refuses a client without a certificate and serves one with', async () => {
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
      tls: { cert: pem('server.pem'), key: pem('server-key.pem'), clientCa: pem('ca.pem') },
    });
    try {
      const anonymous = new MusterClient({ endpoints: server.url, tls: { ca: pem('ca.pem') } });
      await expect(anonymous.put('/tls/b', 'x')).rejects.toThrow();
      const known = new MusterClient({
        endpoints: server.url,
        tls: { ca: pem('ca.pem'), cert: pem('client.pem'), key: pem('client-key.pem') },
      });
      await known.put('/tls/b', 'with a certificate');
      expect(new TextDecoder().decode((await known.get('/tls/b'))?.value)).toBe('with a certificate');
    } finally {
      await server.stop();
    }
  });

  it('the CLI: muster server --tls-cert/--tls-key, and muster --ca', async () => {
    assertBuilt();
    const server = await startServerProcess([
      '--data-dir',
      ':memory:',
      '--tls-cert',
      file('server.pem'),
      '--tls-key',
      file('server-key.pem'),
    ]);
    try {
      expect(server.url).toMatch(/^https:/);
      const env = { MUSTER_ENDPOINT: server.url, MUSTER_TOKEN: TEST_ADMIN_TOKEN };
      expect((await muster(['--ca', file('ca.pem'), 'put', '/tls/c', 'cli'], { env })).code).toBe(0);
      expect((await muster(['get', '/tls/c'], { env: { ...env, MUSTER_CA: file('ca.pem') } })).stdout.trim()).toBe(
        'cli',
      );
      const unverified = await muster(['get', '/tls/c'], { env });
      expect(unverified.code).not.toBe(0);
      const half = await muster(['server', '--tls-cert', file('server.pem'), '--data-dir', ':memory:']);
      expect(half.code).toBe(2);
      expect(half.stderr).toMatch(/--tls-cert and --tls-key/);
    } finally {
      await server.cli.stop('SIGTERM');
    }
  });
});
