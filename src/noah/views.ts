/** Noah's JSON representations (its models' `to_hash`), read from the keyspace. */
import type { Backend } from '../core/backend.js';
import type {
  AppRecord,
  ConfigRecord,
  EphemeralMeta,
  HostRecord,
  LinkRecord,
  NoahType,
  Ref,
  ServiceRecord,
  TagRecord,
} from './store.js';
import { decodeJson, decodeText, keys, splitService } from './store.js';

export type Obj = Record<string, unknown>;

export async function servicesOf(backend: Backend, host: string): Promise<ServiceRecord[]> {
  const { kvs } = await backend.range({ key: '/services/', prefix: true });
  return kvs.map((kv) => decodeJson<ServiceRecord>(kv)!).filter((s) => s.host === host);
}

export function hostView(h: HostRecord, services: ServiceRecord[]): Obj {
  return {
    id: h.id,
    tags: h.tags,
    links: h.links,
    name: h.name,
    status: h.status,
    created_at: h.created_at,
    updated_at: h.updated_at,
    services: Object.fromEntries(services.map((s) => [s.name, s.status])),
  };
}

export function serviceView(s: ServiceRecord): Obj {
  return {
    id: s.id,
    tags: s.tags,
    links: s.links,
    name: s.name,
    status: s.status,
    updated_at: s.updated_at,
    host: s.host,
  };
}

export async function appView(backend: Backend, a: AppRecord): Promise<Obj> {
  const configurations: Obj = {};
  for (const name of a.configurations) {
    const c = decodeJson<ConfigRecord>(await backend.get(keys.config(name)));
    if (c) configurations[name] = { format: c.format, body: c.body };
  }
  return {
    id: a.id,
    tags: a.tags,
    links: a.links,
    name: a.name,
    created_at: a.created_at,
    updated_at: a.updated_at,
    configurations,
  };
}

export function configView(c: ConfigRecord): Obj {
  return {
    id: c.id,
    tags: c.tags,
    links: c.links,
    name: c.name,
    format: c.format,
    body: c.body,
    created_at: c.created_at,
    updated_at: c.updated_at,
  };
}

export function ephemeralView(m: EphemeralMeta, data: Uint8Array | null): Obj {
  return {
    id: m.id,
    tags: m.tags,
    links: m.links,
    path: m.path,
    data: data === null || data.length === 0 ? null : decodeText(data),
    created_at: m.created_at,
    updated_at: m.updated_at,
  };
}

/** The full representation of the object a ref names, or null if it is gone. */
export async function viewOf(backend: Backend, ref: Ref): Promise<Obj | null> {
  switch (ref.type) {
    case 'hosts': {
      const h = decodeJson<HostRecord>(await backend.get(keys.host(ref.name)));
      return h && hostView(h, await servicesOf(backend, h.name));
    }
    case 'services': {
      const [s, h] = splitService(ref.name);
      const rec = decodeJson<ServiceRecord>(await backend.get(keys.service(s, h)));
      return rec && serviceView(rec);
    }
    case 'applications': {
      const a = decodeJson<AppRecord>(await backend.get(keys.app(ref.name)));
      return a && appView(backend, a);
    }
    case 'configurations': {
      const c = decodeJson<ConfigRecord>(await backend.get(keys.config(ref.name)));
      return c && configView(c);
    }
    case 'ephemerals': {
      const m = decodeJson<EphemeralMeta>(await backend.get(keys.ephemeralMeta(ref.name)));
      if (!m) return null;
      const data = await backend.get(keys.ephemeral(ref.name));
      return ephemeralView(m, data?.value ?? null);
    }
  }
}

const pick = (o: Obj, fields: string[]): Obj => Object.fromEntries(fields.map((f) => [f, o[f]]));

/** Members grouped by type, each in the shape Noah gave inside a link or a tag. */
async function grouped(backend: Backend, refs: Ref[], inLink: boolean): Promise<Partial<Record<NoahType, Obj>>> {
  const other = inLink ? 'tags' : 'links';
  const out: Partial<Record<NoahType, Obj>> = {};
  for (const ref of refs) {
    const o = await viewOf(backend, ref);
    if (o === null) continue;
    const group = (out[ref.type] ??= {});
    switch (ref.type) {
      case 'hosts':
        group[ref.name] = pick(o, ['id', 'status', other, 'services']);
        break;
      case 'services': {
        const [s, h] = splitService(ref.name);
        const byHost = (group[s] ??= {}) as Obj;
        byHost[h] = pick(o, ['id', 'status', other]);
        break;
      }
      case 'applications':
        group[ref.name] = pick(o, ['id', other, 'configurations']);
        break;
      case 'configurations':
        group[ref.name] = pick(o, ['id', other, 'format', 'body']);
        break;
      case 'ephemerals':
        group[ref.name] = pick(o, ['id', other, 'path', 'data']);
        break;
    }
  }
  return out;
}

export async function linkView(backend: Backend, l: LinkRecord): Promise<Obj> {
  const g = await grouped(backend, l.nodes, true);
  return {
    id: l.id,
    name: l.name,
    hosts: g.hosts ?? {},
    services: g.services ?? {},
    applications: g.applications ?? {},
    configurations: g.configurations ?? {},
    ephemerals: g.ephemerals ?? {},
    created_at: l.created_at,
    updated_at: l.updated_at,
  };
}

export async function tagView(backend: Backend, t: TagRecord): Promise<Obj> {
  const g = await grouped(backend, t.members, false);
  return { id: t.id, name: t.name, created_at: t.created_at, updated_at: t.updated_at, ...g };
}
