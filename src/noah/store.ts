/**
 * Noah's objects in muster's keyspace (layout in docs/noah.md). Every change is one
 * transaction over the keys it read (compared by modRevision, retried on conflict),
 * so an ephemeral's value and its metadata, or a host and its services, change together.
 */
import { randomUUID } from 'node:crypto';
import type { Backend, KeyValue, LeaseId, TxnOp } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { InvalidKeyError } from '../core/errors.js';
import { validateKey } from '../core/key-path.js';

/** A Noah failure: answered `{"result":"failure","error_message":…}` with this status. */
export class NoahError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (): NoahError => new NoahError(404, 'Resource not found');
export const missingParameters = (): NoahError => new NoahError(400, 'Missing Parameters');

export type NoahType = 'hosts' | 'services' | 'applications' | 'configurations' | 'ephemerals';
export const NOAH_TYPES: readonly NoahType[] = ['hosts', 'services', 'applications', 'configurations', 'ephemerals'];

/** An object a tag or a link points at: services are named `svc/host`, ephemerals by path. */
export interface Ref {
  readonly type: NoahType;
  readonly name: string;
}

export interface Meta {
  id: string;
  created_at: string;
  updated_at: string;
  tags: string[];
  links: string[];
}
export interface HostRecord extends Meta {
  name: string;
  status: string;
}
export interface ServiceRecord extends Meta {
  name: string;
  host: string;
  status: string;
}
export interface AppRecord extends Meta {
  name: string;
  configurations: string[];
}
export interface ConfigRecord extends Meta {
  name: string;
  format: string;
  body: string;
}
export interface EphemeralMeta extends Meta {
  path: string;
}
export interface LinkRecord {
  id: string;
  name: string;
  created_at: string;
  updated_at: string;
  nodes: Ref[];
}
export interface TagRecord {
  id: string;
  name: string;
  created_at: string;
  updated_at: string;
  members: Ref[];
}

export const EPHEMERAL_META = '/muster/noah/ephemerals';

/** A name that is one key segment (a host, a service, an application, a configuration, a tag). */
export function segment(name: string): string {
  if (name === '' || name.includes('/') || name === '.' || name === '..') {
    throw new NoahError(400, `Invalid name ${JSON.stringify(name)}`);
  }
  return name;
}

function checked(key: string): string {
  try {
    return validateKey(key);
  } catch (error) {
    if (error instanceof InvalidKeyError) throw new NoahError(400, error.message);
    throw error;
  }
}

export const keys = {
  host: (h: string) => checked(`/hosts/${segment(h)}/record`),
  service: (s: string, h: string) => checked(`/services/${segment(s)}/${segment(h)}`),
  app: (a: string) => checked(`/applications/${segment(a)}`),
  config: (c: string) => checked(`/configurations/${segment(c)}`),
  /** A path such as `/foo/bar` (a trailing `/` is not part of the key). */
  ephemeral: (path: string) => checked(`/ephemerals${ephemeralKeyPath(path)}`),
  ephemeralMeta: (path: string) => checked(`${EPHEMERAL_META}${ephemeralKeyPath(path)}`),
  link: (name: string) => checked(`/links/${linkSegments(name)}`),
  tag: (t: string) => checked(`/tags/${segment(t)}`),
};

function ephemeralKeyPath(path: string): string {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  if (trimmed === '/' || trimmed === '') throw new NoahError(400, 'Path attribute missing');
  return trimmed;
}

/** A link is named `/name` or `name`: one segment (it is read back at `GET /<name>`). */
function linkSegments(name: string): string {
  const trimmed = name.replace(/^\/+/, '');
  if (trimmed === '') throw new NoahError(400, 'Link name missing');
  return segment(trimmed);
}

/** Noah's timestamps: `2011-02-15 05:19:05 UTC`. */
export function noahTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

export function freshMeta(clock: Clock): Meta {
  const now = noahTime(clock.now());
  return { id: randomUUID(), created_at: now, updated_at: now, tags: [], links: [] };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));
export const decodeJson = <T>(kv: KeyValue | null): T | null =>
  kv === null ? null : (JSON.parse(decoder.decode(kv.value)) as T);
export const decodeText = (bytes: Uint8Array): string => decoder.decode(bytes);

/**
 * One optimistic transaction: what it read is compared at commit, and it retries on
 * a conflict. It reads its own writes, and a key written twice is written once (last wins).
 */
export class Tx {
  readonly reads = new Map<string, number>();
  private readonly writes = new Map<string, { value: Uint8Array | null; lease: LeaseId | null }>();
  constructor(private readonly backend: Backend) {}

  get ops(): TxnOp[] {
    return [...this.writes].map(([key, w]): TxnOp =>
      w.value === null
        ? { type: 'delete', key }
        : { type: 'put', key, value: w.value, ...(w.lease ? { lease: w.lease } : {}) },
    );
  }

  async get(key: string): Promise<KeyValue | null> {
    const written = this.writes.get(key);
    if (written) {
      return written.value === null
        ? null
        : { key, value: written.value, createRevision: 0, modRevision: 0, version: 0, lease: written.lease };
    }
    const kv = await this.backend.get(key);
    this.reads.set(key, kv?.modRevision ?? 0);
    return kv;
  }
  async json<T>(key: string): Promise<T | null> {
    return decodeJson<T>(await this.get(key));
  }
  async range(prefix: string): Promise<KeyValue[]> {
    const result = await this.backend.range({ key: prefix, prefix: true });
    for (const kv of result.kvs) if (!this.writes.has(kv.key)) this.reads.set(kv.key, kv.modRevision);
    return result.kvs;
  }
  put(key: string, value: unknown, lease?: LeaseId | null): void {
    const bytes = value instanceof Uint8Array ? value : encodeJson(value);
    this.writes.set(key, { value: bytes, lease: lease ?? null });
  }
  delete(key: string): void {
    this.writes.set(key, { value: null, lease: null });
  }
}

export async function atomically<T>(backend: Backend, body: (tx: Tx) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const tx = new Tx(backend);
    const result = await body(tx);
    const ops = tx.ops;
    if (ops.length === 0) return result;
    const compare = [...tx.reads].map(([key, rev]) => ({
      key,
      target: 'modRevision' as const,
      op: '=' as const,
      value: rev,
    }));
    const outcome = await backend.txn({ compare, success: ops, failure: [] });
    if (outcome.succeeded) return result;
    if (attempt >= 50) throw new NoahError(409, 'Too many concurrent changes, try again');
  }
}

/** The key holding the object a ref names (for ephemerals, its metadata). */
export function refKey(ref: Ref): string {
  switch (ref.type) {
    case 'hosts':
      return keys.host(ref.name);
    case 'services': {
      const [s, h] = splitService(ref.name);
      return keys.service(s, h);
    }
    case 'applications':
      return keys.app(ref.name);
    case 'configurations':
      return keys.config(ref.name);
    case 'ephemerals':
      return keys.ephemeralMeta(ref.name);
  }
}

export function splitService(name: string): [string, string] {
  const at = name.indexOf('/');
  if (at < 0) throw notFound();
  return [name.slice(0, at), name.slice(at + 1)];
}

const sameRef = (a: Ref, b: Ref): boolean => a.type === b.type && a.name === b.name;

/**
 * Drop an object from every tag and link that names it (Noah left them dangling:
 * its issue #20); the object itself is deleted by the caller in the same transaction.
 */
export async function forgetMemberships(tx: Tx, ref: Ref, meta: Meta): Promise<void> {
  for (const t of meta.tags) {
    const key = keys.tag(t);
    const tag = await tx.json<TagRecord>(key);
    if (tag === null) continue;
    tag.members = tag.members.filter((m) => !sameRef(m, ref));
    tx.put(key, tag);
  }
  for (const l of meta.links) {
    const key = keys.link(l);
    const link = await tx.json<LinkRecord>(key);
    if (link === null) continue;
    link.nodes = link.nodes.filter((m) => !sameRef(m, ref));
    tx.put(key, link);
  }
}

/** Add (or remove) tags on an object and the object on each tag. */
export async function retag(tx: Tx, clock: Clock, ref: Ref, meta: Meta, names: string[], add: boolean): Promise<void> {
  const now = noahTime(clock.now());
  for (const name of names) {
    const key = keys.tag(name);
    let tag = await tx.json<TagRecord>(key);
    if (add) {
      tag ??= { id: randomUUID(), name, created_at: now, updated_at: now, members: [] };
      if (!tag.members.some((m) => sameRef(m, ref))) tag.members.push(ref);
      if (!meta.tags.includes(name)) meta.tags.push(name);
      tag.updated_at = now;
      tx.put(key, tag);
    } else {
      meta.tags = meta.tags.filter((t) => t !== name);
      if (tag !== null) {
        tag.members = tag.members.filter((m) => !sameRef(m, ref));
        tag.updated_at = now;
        tx.put(key, tag);
      }
    }
  }
}

export async function addLink(tx: Tx, clock: Clock, ref: Ref, meta: Meta, name: string): Promise<void> {
  const path = name.startsWith('/') ? name : '/' + name;
  const key = keys.link(path);
  const now = noahTime(clock.now());
  const link = (await tx.json<LinkRecord>(key)) ?? {
    id: randomUUID(),
    name: path,
    created_at: now,
    updated_at: now,
    nodes: [],
  };
  if (!link.nodes.some((m) => sameRef(m, ref))) link.nodes.push(ref);
  link.updated_at = now;
  if (!meta.links.includes(path)) meta.links.push(path);
  tx.put(key, link);
}
