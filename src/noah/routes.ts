/**
 * Noah's HTTP API (lusis/Noah 0.8.7) at the server root, answered as Noah did, on
 * muster's keyspace (layout and differences in docs/noah.md). Bodies are read raw
 * whatever their content type (Noah's clients label JSON as a form).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Backend, LeaseId } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { parseDuration } from '../core/duration.js';
import { ForbiddenError, InvalidArgumentError, UnauthenticatedError } from '../core/errors.js';
import type { KeyNeed } from '../server/access.js';
import { NO_AUTH_PRINCIPAL, access } from '../server/access.js';
import { recordLeaseOwner } from '../security/lease-owners.js';
import type { KeyMode } from '../security/policy.js';
import type {
  AppRecord,
  ConfigRecord,
  EphemeralMeta,
  HostRecord,
  LinkRecord,
  Meta,
  NoahType,
  Ref,
  ServiceRecord,
  TagRecord,
  Tx,
} from './store.js';
import {
  EPHEMERAL_META,
  NoahError,
  addLink,
  atomically,
  decodeJson,
  decodeText,
  forgetMemberships,
  freshMeta,
  keys,
  missingParameters,
  noahTime,
  notFound,
  retag,
  segment,
} from './store.js';
import type { Obj } from './views.js';
import { NoahWatches, prefixOfPattern } from './watches.js';
import {
  appView,
  configView,
  ephemeralView,
  hostView,
  linkView,
  serviceView,
  servicesOf,
  tagView,
  viewOf,
} from './views.js';

export const NOAH_VERSION = '0.8.7';
/** First path segments an ephemeral may not use (Noah::PROTECTED_PATHS). */
const PROTECTED = new Set(['applications', 'configurations', 'hosts', 'services', 'watches', 'ark', 'noah']);
const STATUSES = new Set(['up', 'down', 'pending']);
const JSON_TYPE = 'application/json;charset=utf-8';
export const NOT_FOUND_BODY = ' {"result":"failure","error_message":"Resource not found"}';

export interface NoahOptions {
  readonly backend: Backend;
  readonly clock: Clock;
  /** The largest ephemeral value, in bytes. */
  readonly maxValueBytes: number;
}

export function noahFailure(reply: FastifyReply, status: number, message: string): FastifyReply {
  // Noah's 404 is its views/404.erb, leading space included.
  const body =
    status === 404 && message === 'Resource not found'
      ? NOT_FOUND_BODY
      : JSON.stringify({ result: 'failure', error_message: message });
  return reply.status(status).type(JSON_TYPE).send(body);
}

type Params = Record<string, string>;
const p = (request: FastifyRequest): Params => request.params as Params;

/** The request's body as text (empty when there is none). */
function rawBody(request: FastifyRequest): Buffer {
  const body = request.body;
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
}

/** A JSON object with exactly these keys (Noah's rule: a missing or an extra key is "Missing Parameters"). */
function exact(request: FastifyRequest, required: string[]): Record<string, unknown> {
  const text = rawBody(request).toString('utf8');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new NoahError(400, `Invalid JSON body: ${(error as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw missingParameters();
  const got = Object.keys(data).sort();
  const want = [...required].sort();
  if (got.length !== want.length || got.some((k, i) => k !== want[i])) throw missingParameters();
  return data as Record<string, unknown>;
}

function str(value: unknown, field: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new NoahError(400, `${field[0]!.toUpperCase()}${field.slice(1)} attribute missing`);
}

function status(value: unknown): string {
  if (typeof value !== 'string' || !STATUSES.has(value)) throw new NoahError(400, 'Status must be up, down or pending');
  return value;
}

function tagNames(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || list.some((t) => typeof t !== 'string' || t === '')) throw missingParameters();
  return (list as string[]).map(segment);
}

/** An ephemeral path from the URL: `/foo/bar` (a trailing slash kept, as Noah did). */
function ephemeralPath(request: FastifyRequest): string {
  return '/' + (p(request)['*'] ?? '');
}

const ok = (reply: FastifyReply, body: unknown): FastifyReply => reply.type(JSON_TYPE).send(JSON.stringify(body));

// ---- access declarations: what keys each route reads or writes ----
const needs =
  (...list: [KeyMode, (r: FastifyRequest) => string, boolean?][]) =>
  (request: FastifyRequest): KeyNeed[] =>
    list.map(([mode, key, prefix]) => ({ mode, key: key(request), prefix: prefix ?? false, filtered: false }));
const readPrefix = (prefix: string) => access.keys(needs(['read', () => prefix, true]));
const hostKey = (r: FastifyRequest) => keys.host(p(r).host!);
const serviceKey = (r: FastifyRequest) => keys.service(p(r).svc!, p(r).host!);
const appKey = (r: FastifyRequest) => keys.app(p(r).app!);
const configKey = (r: FastifyRequest) => keys.config(p(r).cfg!);
const ephKey = (r: FastifyRequest) => keys.ephemeral(stripSuffix(ephemeralPath(r)).path);
/** An ephemeral's key, and for `…/tag` the tags it writes too. */
const ephNeeds = (r: FastifyRequest): KeyNeed[] => {
  const list: KeyNeed[] = [{ mode: 'write', key: ephKey(r), prefix: false }];
  if (stripSuffix(ephemeralPath(r)).suffix === 'tag') list.push({ mode: 'write', key: '/tags/', prefix: true });
  return list;
};
/** Tags and links are shared records: tagging or linking writes under /tags/ or /links/. */
const tagsWrite: [KeyMode, (r: FastifyRequest) => string, boolean] = ['write', () => '/tags/', true];
const linksWrite: [KeyMode, (r: FastifyRequest) => string, boolean] = ['write', () => '/links/', true];

function stripSuffix(path: string): { path: string; suffix: 'tag' | 'watch' | null } {
  for (const suffix of ['tag', 'watch'] as const) {
    if (path.endsWith(`/${suffix}`) && path.length > suffix.length + 1) {
      return { path: path.slice(0, -(suffix.length + 1)), suffix };
    }
  }
  return { path, suffix: null };
}

export async function noahRoutes(app: FastifyInstance, { backend, clock, maxValueBytes }: NoahOptions): Promise<void> {
  // Noah read bodies raw whatever their label: its clients send JSON as a form.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.setErrorHandler((error: unknown, request, reply) => {
    if (error instanceof NoahError) return noahFailure(reply, error.status, error.message);
    if (error instanceof UnauthenticatedError) {
      reply.header('www-authenticate', 'Basic realm="muster"');
      return noahFailure(reply, 401, error.message);
    }
    if (error instanceof ForbiddenError) return noahFailure(reply, 403, error.message);
    if (error instanceof InvalidArgumentError) return noahFailure(reply, 400, error.message);
    const status = (error as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return noahFailure(reply, status, (error as Error).message);
    }
    const code = (error as { code?: string }).code;
    if (code === 'backend_unavailable' || code === 'backend_closed')
      return noahFailure(reply, 503, 'Store unavailable');
    request.log.error({ err: error }, 'noah request failed');
    return noahFailure(reply, 500, 'internal error: see the server log');
  });
  const noah = { basicAuth: true };
  // Set below with the watch routes (Noah's `PUT /ephemerals/<path>/watch` shares the ephemeral route).
  let watchEphemeral: (r: FastifyRequest, reply: FastifyReply, path: string) => Promise<FastifyReply> = async () => {
    throw notFound();
  };

  // ---------- root ----------
  app.get('/', { schema: { hide: true }, config: { access: access.public, ...noah } }, async (request, reply) => {
    const accept = request.headers.accept ?? '';
    if (accept.includes('application/json') && !accept.includes('text/html') && !accept.includes('*/*')) {
      const base = `${request.protocol}://${request.headers.host ?? request.host}`;
      const resources = Object.fromEntries(
        ['hosts', 'services', 'applications', 'configurations'].map((r) => [r, { link: `${base}/${r}` }]),
      );
      return ok(reply, { redis_version: 'muster', noah_version: NOAH_VERSION, resources });
    }
    return reply
      .type('text/html;charset=utf-8')
      .send(
        '<!DOCTYPE html><html><head><title>Noah Start Page</title></head><body><h1>Noah Start Page</h1>' +
          '<p>Served by muster. See <a href="/hosts">hosts</a>, <a href="/services">services</a>, ' +
          '<a href="/applications">applications</a>, <a href="/configurations">configurations</a>.</p></body></html>',
      );
  });
  app.get('/version', { schema: { hide: true }, config: { access: access.public, ...noah } }, async (_request, reply) =>
    ok(reply, { redis_version: 'muster', noah_version: NOAH_VERSION }),
  );

  // ---------- hosts ----------
  app.get(
    '/hosts',
    { schema: { hide: true }, config: { access: readPrefix('/hosts/'), ...noah } },
    async (_request, reply) => {
      const { kvs } = await backend.range({ key: '/hosts/', prefix: true });
      const hosts = kvs.filter((kv) => kv.key.endsWith('/record')).map((kv) => decodeJson<HostRecord>(kv)!);
      if (hosts.length === 0) throw notFound();
      const out: Obj = {};
      for (const h of hosts) {
        const { name: _name, ...rest } = hostView(h, await servicesOf(backend, h.name));
        out[h.name] = rest;
      }
      return ok(reply, out);
    },
  );
  app.get(
    '/hosts/:host',
    { schema: { hide: true }, config: { access: access.keys(needs(['read', hostKey])), ...noah } },
    async (r, reply) => {
      const o = await viewOf(backend, { type: 'hosts', name: segment(p(r).host!) });
      if (o === null) throw notFound();
      return ok(reply, o);
    },
  );
  app.get(
    '/hosts/:host/services/:svc',
    { schema: { hide: true }, config: { access: access.keys(needs(['read', serviceKey])), ...noah } },
    async (r, reply) => {
      const s = decodeJson<ServiceRecord>(await backend.get(keys.service(p(r).svc!, p(r).host!)));
      if (s === null) throw notFound();
      return ok(reply, serviceView(s));
    },
  );
  app.put(
    '/hosts/:host',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', hostKey])), ...noah } },
    async (r, reply) => {
      const name = segment(p(r).host!);
      const data = exact(r, ['status']);
      const st = status(data.status);
      const result = await atomically(backend, async (tx) => {
        const key = keys.host(name);
        const existing = await tx.json<HostRecord>(key);
        const h: HostRecord = existing ?? { ...freshMeta(clock), name, status: st };
        h.status = st;
        h.updated_at = noahTime(clock.now());
        tx.put(key, h);
        return { h, created: existing === null };
      });
      return ok(reply, {
        result: 'success',
        id: result.h.id,
        status: result.h.status,
        name,
        new_record: result.created,
      });
    },
  );
  app.delete(
    '/hosts/:host',
    {
      schema: { hide: true },
      config: { access: access.keys(needs(['write', hostKey], ['write', () => '/services/', true])), ...noah },
    },
    async (r, reply) => {
      const name = segment(p(r).host!);
      const result = await atomically(backend, async (tx) => {
        const key = keys.host(name);
        const h = await tx.json<HostRecord>(key);
        if (h === null) throw notFound();
        const services = (await tx.range('/services/'))
          .map((kv) => ({ key: kv.key, s: decodeJson<ServiceRecord>(kv)! }))
          .filter(({ s }) => s.host === name);
        for (const { key: sk, s } of services) {
          await forgetMemberships(tx, { type: 'services', name: `${s.name}/${name}` }, s);
          tx.delete(sk);
        }
        await forgetMemberships(tx, { type: 'hosts', name }, h);
        tx.delete(key);
        return { h, count: services.length };
      });
      return ok(reply, { result: 'success', id: result.h.id, name, service_count: String(result.count) });
    },
  );
  app.delete(
    '/hosts/:host/services/:svc',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', serviceKey])), ...noah } },
    async (r, reply) => ok(reply, await deleteService(p(r).svc!, p(r).host!)),
  );
  objectRoutes('hosts', '/hosts/:host', hostKey, (r) => segment(p(r).host!));

  // ---------- services ----------
  const servicesMap = async (only?: string): Promise<Obj> => {
    const { kvs } = await backend.range({
      key: only === undefined ? '/services/' : `/services/${only}/`,
      prefix: true,
    });
    const out: Record<string, Obj> = {};
    for (const kv of kvs) {
      const s = decodeJson<ServiceRecord>(kv)!;
      (out[s.name] ??= {})[s.host] = {
        id: s.id,
        status: s.status,
        tags: s.tags,
        links: s.links,
        created_at: s.created_at,
        updated_at: s.updated_at,
      };
    }
    return out;
  };
  app.get(
    '/services',
    { schema: { hide: true }, config: { access: readPrefix('/services/'), ...noah } },
    async (_r, reply) => {
      const out = await servicesMap();
      if (Object.keys(out).length === 0) throw notFound();
      return ok(reply, out);
    },
  );
  const svcPrefix = (r: FastifyRequest) => `/services/${segment(p(r).svc!)}/`;
  app.get(
    '/services/:svc',
    { schema: { hide: true }, config: { access: access.keys(needs(['read', svcPrefix, true])), ...noah } },
    async (r, reply) => {
      const out = await servicesMap(segment(p(r).svc!));
      if (Object.keys(out).length === 0) throw notFound();
      return ok(reply, out);
    },
  );
  app.get(
    '/services/:svc/:host',
    { schema: { hide: true }, config: { access: access.keys(needs(['read', serviceKey])), ...noah } },
    async (r, reply) => {
      const s = decodeJson<ServiceRecord>(await backend.get(keys.service(p(r).svc!, p(r).host!)));
      if (s === null) throw notFound();
      return ok(reply, serviceView(s));
    },
  );
  app.put(
    '/services/:svc/:host',
    {
      schema: { hide: true },
      config: { access: access.keys(needs(['write', serviceKey], ['write', hostKey])), ...noah },
    },
    async (r, reply) => {
      const svc = segment(p(r).svc!);
      const host = segment(p(r).host!);
      const data = exact(r, ['status', 'host_status']);
      const st = status(data.status);
      const hst = status(data.host_status);
      const result = await atomically(backend, async (tx) => {
        const now = noahTime(clock.now());
        const hk = keys.host(host);
        const existingHost = await tx.json<HostRecord>(hk);
        const h: HostRecord = existingHost ?? { ...freshMeta(clock), name: host, status: hst };
        h.status = hst;
        h.updated_at = now;
        tx.put(hk, h);
        const sk = keys.service(svc, host);
        const existing = await tx.json<ServiceRecord>(sk);
        const s: ServiceRecord = existing ?? { ...freshMeta(clock), name: svc, host, status: st };
        s.status = st;
        s.updated_at = now;
        tx.put(sk, s);
        return { s, h, serviceCreated: existing === null, hostCreated: existingHost === null };
      });
      return ok(reply, {
        action: result.serviceCreated ? 'create' : 'update',
        result: 'success',
        id: result.s.id,
        name: svc,
        host: { name: host, action: result.hostCreated ? 'create' : 'update', status: result.h.status },
      });
    },
  );
  app.delete(
    '/services/:svc/:host',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', serviceKey])), ...noah } },
    async (r, reply) => ok(reply, await deleteService(p(r).svc!, p(r).host!)),
  );
  app.delete(
    '/services/:svc',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', svcPrefix, true])), ...noah } },
    async (r, reply) => {
      const svc = segment(p(r).svc!);
      const count = await atomically(backend, async (tx) => {
        const found = await tx.range(`/services/${svc}/`);
        if (found.length === 0) throw notFound();
        for (const kv of found) {
          const s = decodeJson<ServiceRecord>(kv)!;
          await forgetMemberships(tx, { type: 'services', name: `${svc}/${s.host}` }, s);
          tx.delete(kv.key);
        }
        return found.length;
      });
      return ok(reply, { action: 'delete', result: 'success', affected_hosts: count, service: svc });
    },
  );
  // Noah's `PUT /services/:svc/link` raised NameError: here it links every host's instance.
  app.put(
    '/services/:svc/link',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', svcPrefix, true], linksWrite)), ...noah } },
    async (r, reply) => {
      const svc = segment(p(r).svc!);
      const linkName = str(exact(r, ['link_name']).link_name, 'link_name');
      await atomically(backend, async (tx) => {
        const found = await tx.range(`/services/${svc}/`);
        if (found.length === 0) throw notFound();
        for (const kv of found) {
          const s = decodeJson<ServiceRecord>(kv)!;
          await addLink(tx, clock, { type: 'services', name: `${svc}/${s.host}` }, s, linkName);
          tx.put(kv.key, s);
        }
      });
      return ok(reply, await servicesMap(svc));
    },
  );
  objectRoutes('services', '/services/:svc/:host', serviceKey, (r) => `${segment(p(r).svc!)}/${segment(p(r).host!)}`);

  async function deleteService(svcName: string, hostName: string): Promise<Obj> {
    const svc = segment(svcName);
    const host = segment(hostName);
    const s = await atomically(backend, async (tx) => {
      const key = keys.service(svc, host);
      const rec = await tx.json<ServiceRecord>(key);
      if (rec === null) throw notFound();
      await forgetMemberships(tx, { type: 'services', name: `${svc}/${host}` }, rec);
      tx.delete(key);
      return rec;
    });
    return { action: 'delete', result: 'success', id: s.id, host, service: svc };
  }

  // ---------- applications ----------
  app.get(
    '/applications',
    { schema: { hide: true }, config: { access: readPrefix('/applications/'), ...noah } },
    async (_r, reply) => {
      const { kvs } = await backend.range({ key: '/applications/', prefix: true });
      if (kvs.length === 0) throw notFound();
      const out: Obj = {};
      for (const kv of kvs) {
        const a = decodeJson<AppRecord>(kv)!;
        const { name: _name, ...rest } = await appView(backend, a);
        out[a.name] = rest;
      }
      return ok(reply, out);
    },
  );
  app.get(
    '/applications/:app',
    { schema: { hide: true }, config: { access: access.keys(needs(['read', appKey])), ...noah } },
    async (r, reply) => {
      const o = await viewOf(backend, { type: 'applications', name: segment(p(r).app!) });
      if (o === null) throw notFound();
      return ok(reply, o);
    },
  );
  app.get(
    '/applications/:app/configurations/:cfg',
    { schema: { hide: true }, config: { access: access.keys(needs(['read', appKey], ['read', configKey])), ...noah } },
    async (r, reply) => {
      const a = decodeJson<AppRecord>(await backend.get(keys.app(p(r).app!)));
      if (a === null || !a.configurations.includes(p(r).cfg!)) throw notFound();
      return sendConfig(r, reply, p(r).cfg!);
    },
  );
  app.put(
    '/applications/:app',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', appKey])), ...noah } },
    async (r, reply) => {
      const name = segment(p(r).app!);
      const data = exact(r, ['name']);
      if (data.name !== name) throw missingParameters();
      const result = await atomically(backend, async (tx) => {
        const key = keys.app(name);
        const existing = await tx.json<AppRecord>(key);
        const a: AppRecord = existing ?? { ...freshMeta(clock), name, configurations: [] };
        a.updated_at = noahTime(clock.now());
        tx.put(key, a);
        return { a, created: existing === null };
      });
      return ok(reply, { result: 'success', id: result.a.id, action: result.created ? 'create' : 'update', name });
    },
  );
  app.put(
    '/applications/:app/configurations/:cfg',
    {
      schema: { hide: true },
      config: { access: access.keys(needs(['write', appKey], ['write', configKey])), ...noah },
    },
    async (r, reply) => {
      const name = segment(p(r).app!);
      const cfg = segment(p(r).cfg!);
      const data = exact(r, ['format', 'body']);
      const format = str(data.format, 'format');
      const body = str(data.body, 'body');
      const result = await atomically(backend, async (tx) => {
        const now = noahTime(clock.now());
        const ak = keys.app(name);
        const existingApp = await tx.json<AppRecord>(ak);
        const a: AppRecord = existingApp ?? { ...freshMeta(clock), name, configurations: [] };
        const ck = keys.config(cfg);
        const existing = await tx.json<ConfigRecord>(ck);
        const c: ConfigRecord = existing ?? { ...freshMeta(clock), name: cfg, format, body };
        c.format = format;
        c.body = body;
        c.updated_at = now;
        tx.put(ck, c);
        if (!a.configurations.includes(cfg)) a.configurations.push(cfg);
        a.updated_at = now;
        tx.put(ak, a);
        return { a, c, appCreated: existingApp === null, cfgCreated: existing === null };
      });
      return ok(reply, {
        result: 'success',
        id: result.a.id,
        name,
        action: result.appCreated ? 'create' : 'update',
        configuration: { action: result.cfgCreated ? 'create' : 'update', id: result.c.id, item: cfg },
      });
    },
  );
  app.delete(
    '/applications/:app',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', appKey])), ...noah } },
    async (r, reply) => {
      const name = segment(p(r).app!);
      const a = await atomically(backend, async (tx) => {
        const key = keys.app(name);
        const rec = await tx.json<AppRecord>(key);
        if (rec === null) throw notFound();
        await forgetMemberships(tx, { type: 'applications', name }, rec);
        tx.delete(key);
        return rec;
      });
      return ok(reply, { result: 'success', action: 'delete', id: a.id, name });
    },
  );
  app.delete(
    '/applications/:app/configurations/:cfg',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', appKey])), ...noah } },
    async (r, reply) => {
      const name = segment(p(r).app!);
      const cfg = segment(p(r).cfg!);
      const a = await atomically(backend, async (tx) => {
        const key = keys.app(name);
        const rec = await tx.json<AppRecord>(key);
        if (rec === null || !rec.configurations.includes(cfg)) throw notFound();
        rec.configurations = rec.configurations.filter((c) => c !== cfg);
        rec.updated_at = noahTime(clock.now());
        tx.put(key, rec);
        return rec;
      });
      return ok(reply, { result: 'success', action: 'delete', id: a.id, name, configuration: cfg });
    },
  );
  objectRoutes('applications', '/applications/:app', appKey, (r) => segment(p(r).app!));

  // ---------- configurations ----------
  async function sendConfig(r: FastifyRequest, reply: FastifyReply, name: string): Promise<FastifyReply> {
    const c = decodeJson<ConfigRecord>(await backend.get(keys.config(segment(name))));
    if (c === null) throw notFound();
    const accept = r.headers.accept ?? '';
    if (/application\/json|application\/\*|\*\/\*/.test(accept)) return ok(reply, configView(c));
    const types: Record<string, string> = {
      string: 'text/plain',
      yaml: 'text/x-yaml',
      json: 'application/json',
      xml: 'text/xml',
    };
    return reply.type(`${types[c.format] ?? 'application/json'};charset=utf-8`).send(c.body);
  }
  const listConfigurations = async (r: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const { kvs } = await backend.range({ key: '/configurations/', prefix: true });
    if (kvs.length === 0) throw notFound();
    const short = (r.query as Record<string, string>).short === 'true';
    const base = `${r.protocol}://${r.headers.host ?? r.host}`;
    const out: Obj = {};
    for (const kv of kvs) {
      const c = decodeJson<ConfigRecord>(kv)!;
      if (short) {
        out[c.name] = {
          format: c.format,
          location: `${base}/configurations/${c.name}`,
          created_at: c.created_at,
          updated_at: c.updated_at,
        };
      } else {
        const { name: _name, ...rest } = configView(c);
        out[c.name] = rest;
      }
    }
    return ok(reply, out);
  };
  // `/configurations/?short=true` too, as Noah's clients wrote it.
  for (const url of ['/configurations', '/configurations/']) {
    app.get(
      url,
      { schema: { hide: true }, config: { access: readPrefix('/configurations/'), ...noah } },
      listConfigurations,
    );
  }
  app.get(
    '/configurations/:cfg',
    { schema: { hide: true }, config: { access: access.keys(needs(['read', configKey])), ...noah } },
    async (r, reply) => sendConfig(r, reply, p(r).cfg!),
  );
  app.put(
    '/configurations/:cfg',
    { schema: { hide: true }, config: { access: access.keys(needs(['write', configKey])), ...noah } },
    async (r, reply) => {
      const name = segment(p(r).cfg!);
      const data = exact(r, ['format', 'body']);
      const format = str(data.format, 'format');
      const body = str(data.body, 'body');
      const result = await atomically(backend, async (tx) => {
        const key = keys.config(name);
        const existing = await tx.json<ConfigRecord>(key);
        const c: ConfigRecord = existing ?? { ...freshMeta(clock), name, format, body };
        c.format = format;
        c.body = body;
        c.updated_at = noahTime(clock.now());
        tx.put(key, c);
        return { c, created: existing === null };
      });
      return ok(reply, {
        result: 'success',
        id: result.c.id,
        action: result.created ? 'create' : 'update',
        item: name,
      });
    },
  );
  app.delete(
    '/configurations/:cfg',
    {
      schema: { hide: true },
      config: { access: access.keys(needs(['write', configKey], ['write', () => '/applications/', true])), ...noah },
    },
    async (r, reply) => {
      const name = segment(p(r).cfg!);
      const result = await atomically(backend, async (tx) => {
        const key = keys.config(name);
        const c = await tx.json<ConfigRecord>(key);
        if (c === null) throw notFound();
        const affected: string[] = [];
        for (const kv of await tx.range('/applications/')) {
          const a = decodeJson<AppRecord>(kv)!;
          if (!a.configurations.includes(name)) continue;
          a.configurations = a.configurations.filter((x) => x !== name);
          affected.push(a.name);
          tx.put(kv.key, a);
        }
        await forgetMemberships(tx, { type: 'configurations', name }, c);
        tx.delete(key);
        return { c, affected };
      });
      return ok(reply, {
        result: 'success',
        id: result.c.id,
        action: 'delete',
        affected_applications: result.affected,
        item: name,
      });
    },
  );
  objectRoutes('configurations', '/configurations/:cfg', configKey, (r) => segment(p(r).cfg!));

  // ---------- ephemerals ----------
  app.get('/ephemerals', { schema: { hide: true }, config: { access: access.public, ...noah } }, async () => {
    throw notFound();
  });
  app.get(
    '/ephemerals/*',
    {
      schema: { hide: true },
      config: { access: access.keys(needs(['read', (r) => keys.ephemeral(ephemeralPath(r))])), ...noah },
    },
    async (r, reply) => {
      const path = ephemeralPath(r);
      const meta = decodeJson<EphemeralMeta>(await backend.get(keys.ephemeralMeta(path)));
      if (meta === null) throw notFound();
      const kv = await backend.get(keys.ephemeral(path));
      if (kv === null) throw notFound();
      return reply.type('application/octet-stream').send(Buffer.from(kv.value));
    },
  );
  app.put(
    '/ephemerals/*',
    { schema: { hide: true }, config: { access: access.keys(ephNeeds), ...noah } },
    async (r, reply) => {
      const { path, suffix } = stripSuffix(ephemeralPath(r));
      if (suffix === 'tag') return ok(reply, await tagObject(r, { type: 'ephemerals', name: path }, true));
      if (suffix === 'watch') return watchEphemeral(r, reply, path);
      const first = path.split('/')[1] ?? '';
      if (PROTECTED.has(first)) throw new NoahError(400, 'Path is reserved');
      // Validated before a lease is granted for it.
      keys.ephemeral(path);
      const data = rawBody(r);
      if (data.length > maxValueBytes) throw new NoahError(400, 'Data too large');
      const ttl = (r.query as Record<string, string | undefined>).ttl;
      let lease: LeaseId | null = null;
      if (ttl !== undefined) {
        let ms: number;
        try {
          ms = parseDuration(ttl, 'ttl');
        } catch (error) {
          throw new NoahError(400, (error as Error).message);
        }
        const seconds = Math.ceil(ms / 1000);
        if (seconds < 1 || seconds > 86_400) throw new NoahError(400, 'ttl must be from 1s to 86400s');
        lease = (await backend.grantLease(seconds)).id;
        // The caller's lease, as one granted through /v1/leases.
        if (r.principal !== NO_AUTH_PRINCIPAL) await recordLeaseOwner(backend, lease, r.principal.tokenId);
      }
      const result = await atomically(backend, async (tx) => {
        const mk = keys.ephemeralMeta(path);
        const existing = await tx.json<EphemeralMeta>(mk);
        const m: EphemeralMeta = existing ?? { ...freshMeta(clock), path };
        m.path = path;
        m.updated_at = noahTime(clock.now());
        tx.put(keys.ephemeral(path), new Uint8Array(data), lease);
        tx.put(mk, m, lease);
        return { m, created: existing === null };
      });
      const view = ephemeralView(result.m, data);
      return ok(reply, {
        action: result.created ? 'create' : 'update',
        result: 'success',
        id: view.id,
        path: view.path,
        data: view.data,
        created_at: view.created_at,
        updated_at: view.updated_at,
        ...(ttl !== undefined ? { ttl: Number(ttlSecondsOf(ttl)), lease } : {}),
      });
    },
  );
  app.delete(
    '/ephemerals/*',
    { schema: { hide: true }, config: { access: access.keys(ephNeeds), ...noah } },
    async (r, reply) => {
      const { path, suffix } = stripSuffix(ephemeralPath(r));
      if (suffix === 'tag') return ok(reply, await tagObject(r, { type: 'ephemerals', name: path }, false));
      const m = await atomically(backend, async (tx) => {
        const mk = keys.ephemeralMeta(path);
        const meta = await tx.json<EphemeralMeta>(mk);
        if (meta === null) throw notFound();
        await forgetMemberships(tx, { type: 'ephemerals', name: meta.path }, meta);
        tx.delete(mk);
        tx.delete(keys.ephemeral(path));
        return meta;
      });
      return ok(reply, { result: 'success', id: m.id, action: 'delete', path });
    },
  );

  // ---------- tags ----------
  const tagsMap = async (only?: string): Promise<Obj> => {
    const kvs = only
      ? [await backend.get(keys.tag(only))].filter((kv) => kv !== null)
      : (await backend.range({ key: '/tags/', prefix: true })).kvs;
    const out: Obj = {};
    for (const kv of kvs) {
      const t = decodeJson<TagRecord>(kv)!;
      const { name: _name, ...rest } = await tagView(backend, t);
      out[t.name] = rest;
    }
    return out;
  };
  app.get('/tags', { schema: { hide: true }, config: { access: readPrefix('/tags/'), ...noah } }, async (_r, reply) => {
    const out = await tagsMap();
    if (Object.keys(out).length === 0) throw notFound();
    return ok(reply, out);
  });
  app.get(
    '/tags/:tag',
    { schema: { hide: true }, config: { access: access.keys(needs(['read', (r) => keys.tag(p(r).tag!)])), ...noah } },
    async (r, reply) => {
      const out = await tagsMap(segment(p(r).tag!));
      if (Object.keys(out).length === 0) throw notFound();
      return ok(reply, out);
    },
  );

  // ---------- links: GET /<link>[/<type>[/<item>]] (Noah's catch-all GETs) ----------
  // Not `v1`, `v2`…: muster's own API keeps its 404 and 405 there.
  const LINK = ':link(^(?!v\\d+$).+$)';
  const linkAccess = access.keys(needs(['read', () => '/links/', true]));
  async function findLink(request: FastifyRequest): Promise<Obj> {
    const name = p(request).link!;
    const l = decodeJson<LinkRecord>(await backend.get(keys.link(segment(name))));
    if (l === null) throw notFound();
    return linkView(backend, l);
  }
  app.get(`/${LINK}`, { schema: { hide: true }, config: { access: linkAccess, ...noah } }, async (r, reply) => {
    return ok(reply, await findLink(r));
  });
  app.get(`/${LINK}/:model`, { schema: { hide: true }, config: { access: linkAccess, ...noah } }, async (r, reply) => {
    const view = await findLink(r);
    const group = view[p(r).model!];
    if (!NOAH_TYPES_SET.has(p(r).model!) || group === undefined) throw notFound();
    return ok(reply, group);
  });
  app.get(
    `/${LINK}/:model/:item`,
    { schema: { hide: true }, config: { access: linkAccess, ...noah } },
    async (r, reply) => {
      const view = await findLink(r);
      const group = view[p(r).model!] as Obj | undefined;
      const item = group && NOAH_TYPES_SET.has(p(r).model!) ? (group[p(r).item!] as Obj | undefined) : undefined;
      if (item === undefined) throw notFound();
      return ok(reply, { ...item, name: p(r).item });
    },
  );

  // ---------- watches (docs/noah.md): webhooks with Noah's body ----------
  const watches = new NoahWatches(backend, clock);
  const manageHooks = access.capability('hooks:manage');
  /** The watch's creator must be able to read what it would deliver. */
  const mayWatch = (r: FastifyRequest, pattern: string): void => {
    const { policy } = r.principal;
    if (!policy.capability('hooks:manage').allowed) {
      throw new ForbiddenError(`${policy.describe()} lacks hooks:manage`, 'hooks:manage');
    }
    const decision = policy.prefix(prefixOfPattern(pattern), 'read');
    if (!decision.allowed || decision.narrower.length > 0) {
      throw new ForbiddenError(`${policy.describe()} may not read everything ${pattern} covers`, decision.rule);
    }
  };
  app.get('/watches', { schema: { hide: true }, config: { access: manageHooks, ...noah } }, async (_r, reply) => {
    const list = await watches.list();
    if (list.length === 0) throw notFound();
    return ok(reply, list);
  });
  app.get('/watches/:name', { schema: { hide: true }, config: { access: manageHooks, ...noah } }, async (r, reply) => {
    const watcher = await watches.byName(p(r).name!);
    if (watcher === null) throw notFound();
    return ok(reply, watcher);
  });
  app.put('/watches', { schema: { hide: true }, config: { access: manageHooks, ...noah } }, async (r, reply) => {
    const data = exact(r, ['endpoint', 'pattern']);
    const pattern = str(data.pattern, 'pattern');
    const endpoint = str(data.endpoint, 'endpoint');
    mayWatch(r, pattern);
    const watcher = await watches.create(pattern, endpoint, r.principal.tokenId);
    return ok(reply, { action: 'create', result: 'success', ...watcher });
  });
  app.delete('/watches', { schema: { hide: true }, config: { access: manageHooks, ...noah } }, async (r, reply) => {
    const data = exact(r, ['endpoint', 'pattern']);
    const watcher = await watches.remove(str(data.pattern, 'pattern'), str(data.endpoint, 'endpoint'));
    if (watcher === null) throw notFound();
    return ok(reply, { result: 'success', action: 'delete', ...watcher });
  });
  /** `PUT /<type>/<name>/watch`: Noah's `watch!`; the object must exist; answers the watch name as a JSON string. */
  async function watchObject(
    r: FastifyRequest,
    reply: FastifyReply,
    pattern: string,
    exists: boolean,
  ): Promise<FastifyReply> {
    const endpoint = str(exact(r, ['endpoint']).endpoint, 'endpoint');
    if (!exists) throw notFound();
    mayWatch(r, pattern);
    try {
      return ok(reply, (await watches.create(pattern, endpoint, r.principal.tokenId)).name);
    } catch (error) {
      // Noah's watch! answered its error as the string, with a 200.
      if (error instanceof NoahError) return ok(reply, error.message);
      throw error;
    }
  }
  watchEphemeral = async (r, reply, path) =>
    watchObject(r, reply, `//noah/ephemerals${path}`, (await backend.get(keys.ephemeralMeta(path))) !== null);
  for (const [type, url] of [
    ['hosts', '/hosts/:host/watch'],
    ['services', '/services/:svc/watch'],
    ['applications', '/applications/:app/watch'],
    ['configurations', '/configurations/:cfg/watch'],
  ] as const) {
    app.put(url, { schema: { hide: true }, config: { access: manageHooks, ...noah } }, async (r, reply) => {
      const params = p(r);
      const name = segment((params.host ?? params.svc ?? params.app ?? params.cfg)!);
      const exists =
        type === 'hosts'
          ? (await backend.get(keys.host(name))) !== null
          : type === 'services'
            ? (await backend.range({ key: `/services/${name}/`, prefix: true, limit: 1, keysOnly: true })).count > 0
            : type === 'applications'
              ? (await backend.get(keys.app(name))) !== null
              : (await backend.get(keys.config(name))) !== null;
      return watchObject(r, reply, `//noah/${type}/${name}`, exists);
    });
  }

  // ---------- per-object tag and link routes ----------
  function objectRoutes(
    type: NoahType,
    url: string,
    objectKey: (r: FastifyRequest) => string,
    nameOf: (r: FastifyRequest) => string,
  ): void {
    const tagAccess = access.keys(needs(['write', objectKey], tagsWrite));
    app.put(`${url}/tag`, { schema: { hide: true }, config: { access: tagAccess, ...noah } }, async (r, reply) =>
      ok(reply, await tagObject(r, { type, name: nameOf(r) }, true)),
    );
    app.delete(`${url}/tag`, { schema: { hide: true }, config: { access: tagAccess, ...noah } }, async (r, reply) =>
      ok(reply, await tagObject(r, { type, name: nameOf(r) }, false)),
    );
    app.put(
      `${url}/link`,
      { schema: { hide: true }, config: { access: access.keys(needs(['write', objectKey], linksWrite)), ...noah } },
      async (r, reply) => {
        const ref = { type, name: nameOf(r) };
        const linkName = str(exact(r, ['link_name']).link_name, 'link_name');
        await atomically(backend, async (tx) => {
          const key = objectRecordKey(ref);
          const meta = await tx.json<Meta>(key);
          if (meta === null) throw notFound();
          await addLink(tx, clock, ref, meta, linkName);
          tx.put(key, meta);
        });
        return ok(reply, await viewOf(backend, ref));
      },
    );
  }

  async function tagObject(r: FastifyRequest, ref: Ref, add: boolean): Promise<Obj | null> {
    const names = tagNames(exact(r, ['tags']).tags);
    await atomically(backend, async (tx: Tx) => {
      const key = objectRecordKey(ref);
      const meta = await tx.json<Meta>(key);
      if (meta === null) throw notFound();
      await retag(tx, clock, ref, meta, names, add);
      tx.put(key, meta, (await tx.get(key))?.lease ?? null);
    });
    return viewOf(backend, ref);
  }
}

const NOAH_TYPES_SET = new Set<string>(['hosts', 'services', 'applications', 'configurations', 'ephemerals']);

function ttlSecondsOf(ttl: string): number {
  return Math.ceil(parseDuration(ttl, 'ttl') / 1000);
}

function objectRecordKey(ref: Ref): string {
  switch (ref.type) {
    case 'hosts':
      return keys.host(ref.name);
    case 'services': {
      const at = ref.name.indexOf('/');
      return keys.service(ref.name.slice(0, at), ref.name.slice(at + 1));
    }
    case 'applications':
      return keys.app(ref.name);
    case 'configurations':
      return keys.config(ref.name);
    case 'ephemerals':
      return keys.ephemeralMeta(ref.name);
  }
}

export { EPHEMERAL_META, decodeText };
