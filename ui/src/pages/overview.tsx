import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { WatchEvent } from '../../../src/core/backend.js';
import type { PageProps } from '../app.js';
import { client } from '../api.js';
import { preview } from '../format.js';
import { useLoad, useThrottled, useWatch } from '../hooks.js';

const RECENT = 30;

/** The fleet at a glance: what is held, who leads, the last changes; live. */
export function Overview(_props: PageProps) {
  const [events, setEvents] = useState<WatchEvent[]>([]);
  const health = useLoad((signal) => client.health({ signal }), []);
  const primitives = useLoad((signal) => client.listPrimitives(undefined, { signal }), []);
  const leases = useLoad((signal) => client.listLeases({ signal }), []);
  const nodes = useLoad((signal) => client.listNodes(undefined, { signal, facts: false }), []);
  const jobs = useLoad((signal) => client.listJobs({ limit: 200 }, { signal }), []);
  const plans = useLoad((signal) => client.listPlans({ limit: 100 }, { signal }), []);
  const leaders = useLoad(
    async (signal) => {
      const elections = (primitives.data?.primitives ?? []).filter((p) => p.kind === 'election');
      return Promise.all(
        elections.map(async (e) => ({ name: e.name, leader: await client.leader(e.name, { signal }) })),
      );
    },
    [primitives.data],
  );
  const refresh = useThrottled(() => {
    primitives.refresh();
    leases.refresh();
    nodes.refresh();
    jobs.refresh();
    plans.refresh();
  }, 1000);
  const { status } = useWatch('/', (event) => {
    // The audit log's own batches are not changes anyone made (the Audit page shows them).
    if (event.kv.key.startsWith('/muster/audit/')) return;
    setEvents((list) => [event, ...list].slice(0, RECENT));
    if (event.kv.key.startsWith('/muster/')) refresh();
  });
  const count = (kind: string) => primitives.data?.primitives.filter((p) => p.kind === kind).length ?? 0;
  const body = health.data?.body as { status?: string; revision?: number } | null | undefined;

  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <div class="cards">
        <Card title="Server" error={health.error}>
          <strong class={body?.status === 'ok' ? 'ok' : 'bad'}>{body?.status ?? '…'}</strong>
          {body?.revision !== undefined && <span class="muted"> at revision {body.revision}</span>}
        </Card>
        <Card title="Nodes" error={nodes.error}>
          <strong class="status-up">{nodes.data?.filter((n) => n.status === 'up').length ?? '…'}</strong> up ·{' '}
          <strong class="status-down">{nodes.data?.filter((n) => n.status === 'down').length ?? '…'}</strong> down{' '}
          <a href="#/nodes">see</a>
        </Card>
        <Card title="Jobs running" error={jobs.error}>
          <strong>{jobs.data?.filter((j) => j.state === 'running' || j.state === 'voting').length ?? '…'}</strong>{' '}
          <a href="#/jobs">see</a>
        </Card>
        <Card title="Plans in progress" error={plans.error}>
          <strong>{plans.data?.filter((p) => p.state === 'running' || p.state === 'paused').length ?? '…'}</strong>{' '}
          <a href="#/plans">see</a>
        </Card>
        <Card title="Sessions (leases)" error={leases.error}>
          <strong>{leases.data?.length ?? '…'}</strong>
        </Card>
        <Card title="Locks held or waited for" error={primitives.error}>
          <strong>{count('lock')}</strong> <a href="#/primitives">see</a>
        </Card>
        <Card title="Semaphores, barriers, onces" error={primitives.error}>
          <strong>{count('semaphore') + count('barrier') + count('once')}</strong>
        </Card>
      </div>
      <h2>Leaders</h2>
      {leaders.error && <p class="error">{leaders.error}</p>}
      {leaders.data && leaders.data.length === 0 && <p class="muted">No election has candidates.</p>}
      {leaders.data && leaders.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Election</th>
              <th scope="col">Leader's value</th>
              <th scope="col">Fencing token</th>
            </tr>
          </thead>
          <tbody>
            {leaders.data.map(({ name, leader }) => (
              <tr key={name}>
                <td>{name}</td>
                <td>{leader ? leader.value : <span class="muted">none</span>}</td>
                <td>{leader?.token ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>
        Last changes <span class="badge">{status}</span>
      </h2>
      {events.length === 0 ? (
        <p class="muted">Changes appear here as they happen.</p>
      ) : (
        <ol class="events" aria-live="polite">
          {events.map((e) => (
            <li key={`${e.kv.modRevision}:${e.kv.key}`}>
              <span class={`op op-${e.type}`}>{e.type}</span> <code>{e.kv.key}</code>{' '}
              <span class="muted">@{e.kv.modRevision}</span>{' '}
              {e.type === 'put' && <span class="value-preview">{preview(e.kv.value)}</span>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Card({ title, error, children }: { title: string; error: string | null; children: ComponentChildren }) {
  return (
    <div class="card">
      <h2>{title}</h2>
      {error ? <p class="error">{error}</p> : <div>{children}</div>}
    </div>
  );
}
