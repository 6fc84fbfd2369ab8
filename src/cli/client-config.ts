/**
 * Where the CLI finds its endpoint and token, first found wins:
 * - endpoint: --endpoint, MUSTER_ENDPOINT, the config file, http://127.0.0.1:4100;
 * - token: --token, MUSTER_TOKEN, the config file, and, for a server on this
 *   machine (a loopback endpoint), the admin token it keeps in its data folder
 *   (MUSTER_DATA_DIR, else ./muster-data)/admin.token.
 * The config file is MUSTER_CLIENT_CONFIG, else $XDG_CONFIG_HOME/muster/config.json,
 * else ~/.config/muster/config.json: `{"endpoint": "...", "token": "...", "ca": "ca.pem"}`
 * (also "cert" and "key" for a client certificate; files relative to the config file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import { ADMIN_TOKEN_FILE } from '../security/admin-bootstrap.js';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:4100';
export const DEFAULT_DATA_DIR = './muster-data';

export interface ClientSettings {
  readonly endpoint: string;
  readonly token?: string;
  /** Where the token came from, for error messages. */
  readonly tokenSource: string;
  /** A CA file to verify an https:// server with (PEM): --ca, MUSTER_CA, or the config file's "ca". */
  readonly ca?: string;
  /** A client certificate and key (PEM files), for a server that requires one. */
  readonly cert?: string;
  readonly key?: string;
}

interface ConfigFile {
  endpoint?: string;
  token?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

export function configFilePath(env: Readonly<Record<string, string | undefined>>): string {
  if (env.MUSTER_CLIENT_CONFIG) return env.MUSTER_CLIENT_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'muster', 'config.json');
}

function readConfig(path: string): ConfigFile {
  if (!existsSync(path)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InvalidArgumentError(`${path} is not valid JSON: ${(error as Error).message}`, 'invalid_config');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(
      `${path} must hold a JSON object {"endpoint","token","ca","cert","key"}`,
      'invalid_config',
    );
  }
  const known = ['endpoint', 'token', 'ca', 'cert', 'key'];
  const record = parsed as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `${path}: unknown field ${unknown.join(', ')} (known: ${known.join(', ')})`,
      'invalid_config',
    );
  }
  const config: ConfigFile = {};
  for (const field of known as (keyof ConfigFile)[]) {
    const value = record[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') {
      throw new InvalidArgumentError(`${path}: ${field} must be a string`, 'invalid_config');
    }
    // Files named in the config file are relative to it.
    config[field] = ['ca', 'cert', 'key'].includes(field) ? resolve(dirname(path), value) : value;
  }
  return config;
}

function isLoopback(endpoint: string): boolean {
  return endpoint.split(',').every((e) => {
    try {
      const host = new URL(e.trim()).hostname;
      return host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host.startsWith('127.');
    } catch {
      return false;
    }
  });
}

export function resolveClientSettings(
  flags: {
    endpoint?: string | undefined;
    token?: string | undefined;
    ca?: string | undefined;
    cert?: string | undefined;
    key?: string | undefined;
  },
  env: Readonly<Record<string, string | undefined>>,
  cwd: string = process.cwd(),
): ClientSettings {
  const configPath = configFilePath(env);
  const file = readConfig(configPath);
  const endpoint = flags.endpoint || env.MUSTER_ENDPOINT || file.endpoint || DEFAULT_ENDPOINT;
  const ca = flags.ca ? resolve(cwd, flags.ca) : env.MUSTER_CA ? resolve(cwd, env.MUSTER_CA) : file.ca;
  const cert = flags.cert ? resolve(cwd, flags.cert) : file.cert;
  const key = flags.key ? resolve(cwd, flags.key) : file.key;
  const tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  return { ...tls, ...tokenOf(flags, env, file, configPath, endpoint, cwd), endpoint };
}

function tokenOf(
  flags: { token?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
  file: ConfigFile,
  configPath: string,
  endpoint: string,
  cwd: string,
): { token?: string; tokenSource: string } {
  if (flags.token) return { token: flags.token, tokenSource: '--token' };
  if (env.MUSTER_TOKEN) return { token: env.MUSTER_TOKEN, tokenSource: 'MUSTER_TOKEN' };
  if (file.token) return { token: file.token, tokenSource: configPath };
  if (isLoopback(endpoint)) {
    const dataDir = env.MUSTER_DATA_DIR && env.MUSTER_DATA_DIR !== ':memory:' ? env.MUSTER_DATA_DIR : DEFAULT_DATA_DIR;
    const adminFile = resolve(cwd, dataDir, ADMIN_TOKEN_FILE);
    if (existsSync(adminFile)) {
      try {
        return { token: readFileSync(adminFile, 'utf8').trim(), tokenSource: adminFile };
      } catch {
        // Not readable by this user: go on without it (the server will say 401).
      }
    }
  }
  return { tokenSource: 'none' };
}
