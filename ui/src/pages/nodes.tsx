import { useMemo, useState } from 'preact/hooks';
import type { NodeSummary } from '../../../src/client/index.js';
import type { PageProps } from '../app.js';
import { client } from '../api.js';
import { ago } from '../format.js';
import { useLoad, useThrottled, useWatch } from '../hooks.js';
import { VirtualList } from '../virtual-list.js';

const ROW = 34;

/** #/nodes: every node, or a query's, in a virtualised table (fast at 10,000); #/nodes/<name>: one node. */
export function Nodes({ route }: PageProps) {
  // Keyed: another node is a fresh view, never the last one's facts under a new name.
  return route[0] ? <NodeDetail key={route[0]} name={route[0]} /> : <NodeList />;
}

function NodeList() {
  const [query, setQuery] = useState('');
  const nodes = useLoad((signal) => client.listNodes(query || undefined, { signal, facts: false }), [query]);
  const refresh = useThrottled(() => nodes.refresh(), 2000);
  const { status } = useWatch('/muster/nodes/', refresh);
  const counts = useMemo(() => {
    const list = nodes.data ?? [];
    const up = list.filter((n) => n.status === 'up').length;
    return { up, down: list.length - up };
  }, [nodes.data]);
  return (
    <section aria-labelledby="nodes-title">
      <h1 id="nodes-title">
        Nodes <span class="badge">{status}</span>
      </h1>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery(String(new FormData(e.currentTarget as HTMLFormElement).get('query') ?? '').trim());
        }}
      >
        <label for="node-query">Query</label>
        <input id="node-query" name="query" size={40} placeholder="role:web AND env:prod" defaultValue={query} />
        <button type="submit">Find</button>
        {nodes.data && (
          <span class="muted" aria-live="polite">
            {nodes.data.length} nodes: <span class="status-up">{counts.up} up</span>,{' '}
            <span class="status-down">{counts.down} down</span>
          </span>
        )}
      </form>
      {nodes.error && <p class="error">{nodes.error}</p>}
      {nodes.data && nodes.data.length === 0 && (
        <p class="muted">{query ? 'No node matches.' : 'No nodes yet: start muster agent on them (docs/agent.md).'}</p>
      )}
      {nodes.data && nodes.data.length > 0 && (
        <div class="nodes-table">
          <VirtualList
            items={nodes.data}
            rowHeight={ROW}
            height={Math.min(600, Math.max(ROW * 3, nodes.data.length * ROW))}
            label="Nodes"
            header={
              <>
                <span>Name</span>
                <span>Status</span>
                <span>Last seen</span>
                <span>Tags</span>
                <span>Attributes</span>
              </>
            }
            row={(n: NodeSummary) => (
              <>
                <span>
                  <a href={`#/nodes/${encodeURIComponent(n.name)}`} tabIndex={-1}>
                    {n.name}
                  </a>
                </span>
                <span class={`status-${n.status}`}>{n.status}</span>
                <span>{n.status === 'up' ? 'now' : ago(n.lastSeen)}</span>
                <span>
                  {n.tags.map((t) => (
                    <span class="tag" key={t}>
                      {t}
                    </span>
                  ))}
                </span>
                <span>
                  {Object.entries(n.attrs)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(' ')}
                </span>
              </>
            )}
            onOpen={(n) => (location.hash = `#/nodes/${encodeURIComponent(n.name)}`)}
          />
        </div>
      )}
    </section>
  );
}

function NodeDetail({ name }: { name: string }) {
  const node = useLoad((signal) => client.getNode(name, { signal }), [name]);
  const jobs = useLoad(
    async (signal) =>
      (await client.listJobs({ limit: 200 }, { signal })).filter((j) => j.nodes.includes(name)).slice(0, 20),
    [name],
  );
  const n = node.data;
  return (
    <section aria-labelledby="node-title">
      <p>
        <a href="#/nodes">← Nodes</a>
      </p>
      <h1 id="node-title">
        {name} {n && <span class={`status-${n.status}`}>{n.status}</span>}
      </h1>
      {node.error && <p class="error">{node.error}</p>}
      {n && (
        <dl class="meta">
          <dt>Last seen</dt>
          <dd>{n.status === 'up' ? 'now (its session is alive)' : `${ago(n.lastSeen)} (${n.lastSeen})`}</dd>
          <dt>Registered</dt>
          <dd>{n.registeredAt}</dd>
          <dt>Tags</dt>
          <dd>{n.tags.join(', ') || '-'}</dd>
          {Object.entries(n.attrs).map(([k, v]) => (
            <>
              <dt key={`a${k}`}>{k}</dt>
              <dd>{v}</dd>
            </>
          ))}
        </dl>
      )}
      {n && (
        <>
          <h2>Facts</h2>
          <pre class="value value-json">{JSON.stringify(n.facts, null, 2)}</pre>
        </>
      )}
      <h2>Recent jobs</h2>
      {jobs.data && jobs.data.length === 0 && <p class="muted">None.</p>}
      {jobs.data && jobs.data.length > 0 && (
        <ul>
          {jobs.data.map((j) => (
            <li key={j.id}>
              <a href={`#/jobs/${encodeURIComponent(j.id)}`}>{j.id}</a> <code>{j.command}</code>{' '}
              <span class={`state state-${j.state}`}>{j.state}</span> <span class="muted">{ago(j.createdAt)}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
