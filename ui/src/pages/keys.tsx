import { useState } from 'preact/hooks';
import type { KeyValue, WatchEvent } from '../../../src/core/backend.js';
import type { PageProps } from '../app.js';
import { client, messageOf } from '../api.js';
import { preview, showValue } from '../format.js';
import { useLoad, useThrottled, useWatch } from '../hooks.js';

const LIST_LIMIT = 5000;

/** #/keys/<prefix>/<key>: one level of the keyspace as a tree, a key's value and history, a live watch. */
export function Keys({ route }: PageProps) {
  const prefix = normalPrefix(route[0] ?? '/');
  const selected = route[1] ?? null;
  const [live, setLive] = useState(false);
  const [events, setEvents] = useState<WatchEvent[]>([]);
  const listing = useLoad((signal) => client.list(prefix, { keysOnly: true, limit: LIST_LIMIT, signal }), [prefix]);
  const refresh = useThrottled(() => listing.refresh(), 500);
  const { status } = useWatch(live ? prefix : null, (event) => {
    setEvents((list) => [event, ...list].slice(0, 100));
    refresh();
  });
  const children = listing.data ? childrenOf(prefix, listing.data.kvs) : null;
  const crumbs = prefix.split('/').filter((s) => s !== '');

  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">Keys</h1>
      <nav class="crumbs" aria-label="Prefix">
        <a href={keysHref('/')}>/</a>
        {crumbs.map((segment, i) => (
          <span key={i}>
            <a href={keysHref('/' + crumbs.slice(0, i + 1).join('/') + '/')}>{segment}</a>/
          </span>
        ))}
      </nav>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const value = (new FormData(e.currentTarget as HTMLFormElement).get('prefix') as string) || '/';
          location.hash = keysHref(normalPrefix(value));
        }}
      >
        <label for="prefix">Prefix</label>
        <input id="prefix" name="prefix" defaultValue={prefix} key={prefix} />
        <button type="submit">Go</button>
        <label class="toggle">
          <input type="checkbox" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} />{' '}
          Watch this prefix live
        </label>
        {live && <span class="badge">{status}</span>}
      </form>
      <div class="split">
        <div class="tree">
          {listing.error && <p class="error">{listing.error}</p>}
          {children && children.length === 0 && <p class="muted">No keys under {prefix}</p>}
          {children && (
            <ul>
              {children.map((c) =>
                c.folder ? (
                  <li key={'f' + c.path}>
                    <a class="folder" href={keysHref(c.path)}>
                      {c.name}/
                    </a>{' '}
                    <span class="muted">{c.count}</span>
                  </li>
                ) : (
                  <li key={'k' + c.path}>
                    <a href={keysHref(prefix, c.path)} aria-current={c.path === selected ? 'true' : undefined}>
                      {c.name}
                    </a>
                  </li>
                ),
              )}
            </ul>
          )}
          {listing.data?.more && <p class="muted">Only the first {LIST_LIMIT} keys are shown: narrow the prefix.</p>}
        </div>
        <div class="detail">
          {selected ? <KeyDetail key={selected} path={selected} /> : <p class="muted">Pick a key.</p>}
        </div>
      </div>
      {live && (
        <>
          <h2>Changes under {prefix}</h2>
          {events.length === 0 && <p class="muted">Waiting for changes…</p>}
          <ol class="events">
            {events.map((e) => (
              <li key={`${e.kv.modRevision}:${e.kv.key}`}>
                <span class={`op op-${e.type}`}>{e.type}</span> <a href={keysHref(prefix, e.kv.key)}>{e.kv.key}</a>{' '}
                <span class="muted">@{e.kv.modRevision}</span>{' '}
                {e.type === 'put' && <span class="value-preview">{preview(e.kv.value)}</span>}
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

function KeyDetail({ path }: { path: string }) {
  const kv = useLoad((signal) => client.get(path, { signal }), [path]);
  const [history, setHistory] = useState<{ events: WatchEvent[]; note: string | null } | null>(null);
  const loadHistory = async (current: KeyValue) => {
    setHistory({ events: [], note: 'loading…' });
    const controller = new AbortController();
    const events: WatchEvent[] = [];
    try {
      for await (const event of client.watch(path, {
        prefix: false,
        fromRevision: current.createRevision,
        signal: controller.signal,
      })) {
        events.push(event);
        if (event.kv.modRevision >= current.modRevision) break;
      }
      setHistory({ events: events.reverse(), note: null });
    } catch (error) {
      setHistory({ events: events.reverse(), note: messageOf(error) });
    } finally {
      controller.abort();
    }
  };
  if (kv.error) return <p class="error">{kv.error}</p>;
  if (!kv.data) return <p class="muted">Loading…</p>;
  const shown = showValue(kv.data.value);
  return (
    <article>
      <h2>
        <code>{path}</code>
      </h2>
      <dl class="meta">
        <dt>Revision</dt>
        <dd>{kv.data.modRevision}</dd>
        <dt>Created at</dt>
        <dd>{kv.data.createRevision}</dd>
        <dt>Version</dt>
        <dd>{kv.data.version}</dd>
        <dt>Lease</dt>
        <dd>{kv.data.lease ?? 'none'}</dd>
        <dt>Size</dt>
        <dd>{kv.data.value.length} bytes</dd>
      </dl>
      <p class="muted">{shown.kind === 'json' ? 'JSON' : shown.kind === 'binary' ? 'binary (hex)' : 'text'}</p>
      <pre class={`value value-${shown.kind}`}>{shown.text}</pre>
      <button type="button" onClick={() => void loadHistory(kv.data!)}>
        Show its revisions
      </button>
      {history && (
        <>
          {history.note && <p class="muted">{history.note}</p>}
          <ol class="events">
            {history.events.map((e) => (
              <li key={e.kv.modRevision}>
                <span class={`op op-${e.type}`}>{e.type}</span> <span class="muted">@{e.kv.modRevision}</span>{' '}
                {e.type === 'put' && <span class="value-preview">{preview(e.kv.value)}</span>}
              </li>
            ))}
          </ol>
        </>
      )}
    </article>
  );
}

interface Child {
  readonly name: string;
  readonly path: string;
  readonly folder: boolean;
  readonly count: number;
}

/** The next level under `prefix`: folders (with how many keys below) and keys, folders first. */
export function childrenOf(prefix: string, kvs: readonly KeyValue[]): Child[] {
  const folders = new Map<string, number>();
  const keys: Child[] = [];
  for (const kv of kvs) {
    const rest = kv.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash < 0) keys.push({ name: rest || kv.key, path: kv.key, folder: false, count: 1 });
    else {
      const name = rest.slice(0, slash);
      folders.set(name, (folders.get(name) ?? 0) + 1);
    }
  }
  const folderList = [...folders].map(([name, count]) => ({ name, path: prefix + name + '/', folder: true, count }));
  return [...folderList, ...keys];
}

function normalPrefix(value: string): string {
  let prefix = value.startsWith('/') ? value : '/' + value;
  if (!prefix.endsWith('/')) prefix += '/';
  return prefix.replace(/\/{2,}/g, '/');
}

export function keysHref(prefix: string, key?: string): string {
  return `#/keys/${encodeURIComponent(prefix)}${key !== undefined ? '/' + encodeURIComponent(key) : ''}`;
}
