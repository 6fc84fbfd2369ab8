import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/exit-codes.js';
import { parseListen, parseSize, resolveServerConfig } from '../../src/cli/server-config.js';

describe('server settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (content: unknown): string => {
    const path = join(dir, `c${Math.random().toString(16).slice(2)}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  it("--noah-listen, MUSTER_NOAH_LISTEN and noahListen in the file give Noah's second address (none by default)", () => {
    expect(resolveServerConfig({}, {}, '/srv').noahListen).toBeUndefined();
    const config = file({ noahListen: '0.0.0.0:5678' });
    expect(resolveServerConfig({ config }, {}, '/srv').noahListen).toEqual({ host: '0.0.0.0', port: 5678 });
    expect(resolveServerConfig({ config }, { MUSTER_NOAH_LISTEN: ':5679' }, '/srv').noahListen).toEqual({
      host: '127.0.0.1',
      port: 5679,
    });
    expect(
      resolveServerConfig({ config, noahListen: '127.0.0.1:5680' }, { MUSTER_NOAH_LISTEN: ':5679' }, '/srv').noahListen,
    ).toEqual({ host: '127.0.0.1', port: 5680 });
    expect(() => resolveServerConfig({ noahListen: 'nope' }, {}, '/srv')).toThrow(/invalid listen address/);
  });

  it('uses the defaults when nothing is given', () => {
    expect(resolveServerConfig({}, {}, '/srv')).toEqual({
      host: '127.0.0.1',
      port: 4100,
      dataDir: '/srv/muster-data',
      maxValueBytes: 1024 * 1024,
      retention: 100_000,
      etcd: null,
    });
  });

  it('prefers flags over environment over config file', () => {
    const config = file({ listen: '10.0.0.1:1', dataDir: '/from-file', maxValueSize: '2KiB' });
    expect(resolveServerConfig({ config }, {}, '/srv')).toMatchObject({
      host: '10.0.0.1',
      port: 1,
      dataDir: '/from-file',
      maxValueBytes: 2048,
    });
    const env = { MUSTER_CONFIG: config, MUSTER_LISTEN: '127.0.0.2:2', MUSTER_DATA_DIR: ':memory:' };
    expect(resolveServerConfig({}, env, '/srv')).toMatchObject({
      host: '127.0.0.2',
      port: 2,
      dataDir: ':memory:',
      maxValueBytes: 2048,
    });
    expect(resolveServerConfig({ listen: ':3', dataDir: 'rel', maxValueSize: '5' }, env, '/srv')).toEqual({
      host: '127.0.0.1',
      port: 3,
      dataDir: '/srv/rel',
      maxValueBytes: 5,
      retention: 100_000,
      etcd: null,
    });
  });

  it('reads etcd settings and refuses bad ones', () => {
    const config = resolveServerConfig(
      { etcd: 'http://10.0.0.1:2379,http://10.0.0.2:2379', retention: '500' },
      {},
      '/srv',
    );
    expect(config.retention).toBe(500);
    expect(config.etcd?.endpoints).toEqual(['http://10.0.0.1:2379', 'http://10.0.0.2:2379']);
    expect(config.etcd?.prefix).toBe('/muster/');
    expect(
      resolveServerConfig({}, { MUSTER_ETCD: 'http://e:2379', MUSTER_ETCD_PREFIX: '/x/' }, '/srv').etcd?.prefix,
    ).toBe('/x/');
    expect(() => resolveServerConfig({ etcd: 'ftp://e:2379' }, {}, '/srv')).toThrow(/invalid etcd endpoint/);
    expect(() => resolveServerConfig({ etcd: 'http://e:2379', etcdPrefix: 'x' }, {}, '/srv')).toThrow(
      /invalid etcd prefix/,
    );
    expect(() => resolveServerConfig({ retention: '0' }, {}, '/srv')).toThrow(/invalid retention/);
  });

  it('names what is wrong in a config file', () => {
    expect(() => resolveServerConfig({ config: join(dir, 'absent.json') }, {})).toThrow(/cannot read the config file/);
    expect(() => resolveServerConfig({ config: file('{nope') }, {})).toThrow(/not valid JSON/);
    expect(() => resolveServerConfig({ config: file({ port: 1 }) }, {})).toThrow(/unknown setting "port"/);
    expect(() => resolveServerConfig({ config: file([]) }, {})).toThrow(UsageError);
  });

  it('parses listen addresses and sizes', () => {
    expect(parseListen('0.0.0.0:4100')).toEqual({ host: '0.0.0.0', port: 4100 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseListen('4200')).toEqual({ host: '127.0.0.1', port: 4200 });
    for (const bad of ['host', 'host:', 'h:99999', 'a:b:c']) expect(() => parseListen(bad)).toThrow(UsageError);
    expect(parseSize('1MiB', 'x')).toBe(1048576);
    expect(parseSize('512KiB', 'x')).toBe(524288);
    expect(parseSize('2MB', 'x')).toBe(2_000_000);
    expect(parseSize('100', 'x')).toBe(100);
    for (const bad of ['', '0', '1XB', '-5', 'big'])
      expect(() => parseSize(bad, 'max value size')).toThrow(/invalid max value size/);
  });
});
