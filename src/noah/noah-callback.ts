/**
 * The body Noah POSTed to a watch's endpoint (its `notify_via_redis_*` message): the
 * object's representation merged with `action`, `pubcategory` and `path`. Built here
 * from a change of muster's keyspace, so that Noah watches can be webhooks with this
 * body format (the hooks engine calls it per event; not wired yet: docs/noah.md).
 *
 * The talk's example, after `PUT /ephemerals/chef/notify/localhost -d 1` (an update):
 * `{"id","tags":[],"links":[],"path":"/ephemerals//chef/notify/localhost","data":"1",
 * "created_at","updated_at","action":"update","pubcategory":"//noah/ephemerals/chef/notify/localhost"}`
 * (the `//` in `path` is Noah's: "/ephemerals/" + a path that starts with "/").
 */
import type { Backend, KeyValue, WatchEvent } from '../core/backend.js';
import { CompactedError } from '../core/errors.js';
import type { AppRecord, ConfigRecord, EphemeralMeta, HostRecord, ServiceRecord } from './store.js';
import { EPHEMERAL_META, decodeJson } from './store.js';
import type { Obj } from './views.js';
import { appView, configView, ephemeralView, hostView, serviceView, servicesOf } from './views.js';

/** The Noah object a key holds: its type, name and Noah channel (`pubcategory`), or null. */
export function noahObjectOf(key: string): { type: string; name: string; pubcategory: string; path: string } | null {
  let m: RegExpExecArray | null;
  if (key.startsWith('/ephemerals/')) {
    const path = key.slice('/ephemerals'.length);
    return { type: 'ephemerals', name: path, pubcategory: `//noah/ephemerals${path}`, path: `/ephemerals/${path}` };
  }
  if ((m = /^\/hosts\/([^/]+)\/record$/.exec(key))) return simple('hosts', m[1]!);
  if ((m = /^\/services\/([^/]+)\/([^/]+)$/.exec(key))) return simple('services', m[1]!);
  if ((m = /^\/applications\/([^/]+)$/.exec(key))) return simple('applications', m[1]!);
  if ((m = /^\/configurations\/([^/]+)$/.exec(key))) return simple('configurations', m[1]!);
  return null;
}

function simple(type: string, name: string) {
  return { type, name, pubcategory: `//noah/${type}/${name}`, path: `/${type}/${name}` };
}

/** The value a key had just before `revision` (null if none, or if that history is compacted). */
async function before(backend: Backend, key: string, revision: number): Promise<KeyValue | null> {
  if (revision <= 1) return null;
  try {
    return await backend.get(key, { revision: revision - 1 });
  } catch (error) {
    if (error instanceof CompactedError) return null;
    throw error;
  }
}

async function at(backend: Backend, key: string, revision: number): Promise<KeyValue | null> {
  try {
    return await backend.get(key, { revision });
  } catch (error) {
    if (error instanceof CompactedError) return backend.get(key);
    throw error;
  }
}

/**
 * Noah's callback body for one event, or null when the key is not a Noah object
 * (its metadata keys under /muster/noah/, or anything else).
 */
export async function noahCallbackBody(backend: Backend, event: WatchEvent): Promise<string | null> {
  const object = noahObjectOf(event.kv.key);
  if (object === null) return null;
  const deleted = event.type === 'delete';
  const action = deleted ? 'delete' : event.kv.version === 1 ? 'create' : 'update';
  // What the object was: after a put, its value; after a delete, the one before.
  const kv = deleted ? (event.prevKv ?? (await before(backend, event.kv.key, event.revision))) : event.kv;
  let view: Obj;
  switch (object.type) {
    case 'ephemerals': {
      const metaKey = `${EPHEMERAL_META}${object.name}`;
      const meta = decodeJson<EphemeralMeta>(
        deleted ? await before(backend, metaKey, event.revision) : await at(backend, metaKey, event.revision),
      );
      view = meta
        ? ephemeralView(meta, kv?.value ?? null)
        : ephemeralView(
            { id: '', path: object.name, tags: [], links: [], created_at: '', updated_at: '' },
            kv?.value ?? null,
          );
      if (!meta) {
        // A key written through /v1, not Noah: no id or times to give.
        view.id = null;
        view.created_at = null;
        view.updated_at = null;
      }
      break;
    }
    case 'hosts': {
      const h = decodeJson<HostRecord>(kv);
      if (h === null) return null;
      view = hostView(h, deleted ? [] : await servicesOf(backend, h.name));
      break;
    }
    case 'services': {
      const s = decodeJson<ServiceRecord>(kv);
      if (s === null) return null;
      view = serviceView(s);
      break;
    }
    case 'applications': {
      const a = decodeJson<AppRecord>(kv);
      if (a === null) return null;
      view = await appView(backend, a);
      break;
    }
    default: {
      const c = decodeJson<ConfigRecord>(kv);
      if (c === null) return null;
      view = configView(c);
    }
  }
  return JSON.stringify({ ...view, action, pubcategory: object.pubcategory, path: object.path });
}
