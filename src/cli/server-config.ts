import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from './exit-codes.js';

/** How `muster server` runs, once flags, environment, config file and defaults are merged. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** An absolute folder, or ":memory:". */
  readonly dataDir: string;
  readonly maxValueBytes: number;
  /** Run on these etcd endpoints instead of the embedded store. */
  readonly etcd: EtcdSettings | null;
  /** Revisions of history kept for watches (the compaction duty keeps this many). */
  readonly retention: number;
  /** Also serve Noah's API here (`--noah-listen`, MUSTER_NOAH_LISTEN, "noahListen"), or null. */
  readonly noahListen?: { readonly host: string; readonly port: number } | null;
}

export interface EtcdSettings {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

/** What `--listen`, `--data-dir`, `--config` and `--max-value-size` gave. */
export interface ServerFlags {
  readonly listen?: string;
  readonly dataDir?: string;
  readonly config?: string;
  readonly maxValueSize?: string;
  readonly etcd?: string;
  readonly etcdPrefix?: string;
  readonly etcdCa?: string;
  readonly etcdCert?: string;
  readonly etcdKey?: string;
  readonly retention?: string;
  readonly noahListen?: string;
}

export const SERVER_DEFAULTS = {
  listen: '127.0.0.1:4100',
  dataDir: './muster-data',
  maxValueSize: '1MiB',
  etcdPrefix: '/muster/',
  retention: '100000',
} as const;

const CONFIG_FIELDS = [
  'listen',
  'dataDir',
  'maxValueSize',
  'etcd',
  'etcdPrefix',
  'etcdCa',
  'etcdCert',
  'etcdKey',
  'retention',
  'noahListen',
] as const;
type ConfigFile = Partial<Record<(typeof CONFIG_FIELDS)[number], string>>;

/**
 * Merge the server's settings: flags win over environment variables
 * (MUSTER_LISTEN, MUSTER_DATA_DIR, MUSTER_CONFIG), which win over the config file
 * (JSON: {"listen", "dataDir", "maxValueSize"}), which wins over the defaults.
 * Throws UsageError naming the setting that is wrong.
 */
export function resolveServerConfig(
  flags: ServerFlags,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string = process.cwd(),
): ServerConfig {
  const configPath = flags.config ?? nonEmpty(env.MUSTER_CONFIG);
  const file = configPath !== undefined ? readConfigFile(resolve(cwd, configPath)) : {};
  const listen = flags.listen ?? nonEmpty(env.MUSTER_LISTEN) ?? file.listen ?? SERVER_DEFAULTS.listen;
  const dataDir = flags.dataDir ?? nonEmpty(env.MUSTER_DATA_DIR) ?? file.dataDir ?? SERVER_DEFAULTS.dataDir;
  const maxValueSize = flags.maxValueSize ?? file.maxValueSize ?? SERVER_DEFAULTS.maxValueSize;
  const { host, port } = parseListen(listen);
  const etcd = flags.etcd ?? nonEmpty(env.MUSTER_ETCD) ?? file.etcd;
  const retention = Number(
    flags.retention ?? nonEmpty(env.MUSTER_RETENTION) ?? file.retention ?? SERVER_DEFAULTS.retention,
  );
  if (!Number.isInteger(retention) || retention < 1) {
    throw new UsageError(
      `invalid retention ${JSON.stringify(flags.retention ?? file.retention)}: a whole number of revisions ≥ 1`,
    );
  }
  const noahListen = flags.noahListen ?? nonEmpty(env.MUSTER_NOAH_LISTEN) ?? file.noahListen;
  return {
    host,
    port,
    ...(noahListen !== undefined ? { noahListen: parseListen(noahListen) } : {}),
    dataDir: dataDir === ':memory:' ? dataDir : resolve(cwd, dataDir),
    maxValueBytes: parseSize(maxValueSize, 'max value size'),
    retention,
    etcd: etcd === undefined ? null : etcdSettings(etcd, flags, env, file, cwd),
  };
}

function etcdSettings(
  list: string,
  flags: ServerFlags,
  env: Readonly<Record<string, string | undefined>>,
  file: ConfigFile,
  cwd: string,
): EtcdSettings {
  const endpoints = list
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (endpoints.length === 0) throw new UsageError('--etcd needs at least one endpoint, such as http://10.0.0.1:2379');
  for (const endpoint of endpoints) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(endpoint)) {
      throw new UsageError(
        `invalid etcd endpoint ${JSON.stringify(endpoint)}: use http://host:port or https://host:port`,
      );
    }
  }
  const prefix = flags.etcdPrefix ?? nonEmpty(env.MUSTER_ETCD_PREFIX) ?? file.etcdPrefix ?? SERVER_DEFAULTS.etcdPrefix;
  if (!prefix.startsWith('/'))
    throw new UsageError(`invalid etcd prefix ${JSON.stringify(prefix)}: it must start with "/"`);
  const path = (p: string | undefined) => (p === undefined ? undefined : resolve(cwd, p));
  const ca = path(flags.etcdCa ?? file.etcdCa);
  const cert = path(flags.etcdCert ?? file.etcdCert);
  const key = path(flags.etcdKey ?? file.etcdKey);
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--etcd-cert and --etcd-key go together');
  const tls = ca || cert ? { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } : undefined;
  return { endpoints, prefix, ...(tls ? { tls } : {}) };
}

/** `host:port`, `[v6]:port`, `:port` or `port` (host 127.0.0.1). */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text.trim()) ?? /^()()(\d+)$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port > 65_535) {
    throw new UsageError(`invalid listen address ${JSON.stringify(text)}: use host:port, such as 127.0.0.1:4100`);
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** A size such as `1MiB`, `512KiB`, `2MB` or a number of bytes. */
export function parseSize(text: string | number, what: string): number {
  if (typeof text === 'number' && Number.isInteger(text) && text > 0) return text;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(String(text).trim());
  const unit = SIZE_UNITS[(match?.[2] ?? '').toLowerCase()];
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isFinite(bytes) || bytes < 1) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(text)}: use bytes or a size such as 512KiB, 1MiB`);
  }
  return bytes;
}

function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `cannot read the config file ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `the config file ${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`the config file ${path} must hold a JSON object such as {"listen": "127.0.0.1:4100"}`);
  }
  const record = value as Record<string, unknown>;
  const config: ConfigFile = {};
  for (const [field, fieldValue] of Object.entries(record)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(field)) {
      throw new UsageError(
        `the config file ${path} has an unknown setting ${JSON.stringify(field)} (known: ${CONFIG_FIELDS.join(', ')})`,
      );
    }
    if (
      typeof fieldValue !== 'string' &&
      !((field === 'maxValueSize' || field === 'retention') && typeof fieldValue === 'number')
    ) {
      throw new UsageError(`the config file ${path}: "${field}" must be a string`);
    }
    config[field as (typeof CONFIG_FIELDS)[number]] = String(fieldValue);
  }
  return config;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
