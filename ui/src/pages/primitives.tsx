import type { WirePrimitiveList } from '../../../src/api/wire.js';
import type { KeyValue } from '../../../src/core/backend.js';
import type { PageProps } from '../app.js';
import { client } from '../api.js';
import { useLoad, useThrottled, useWatch } from '../hooks.js';

type Entry = WirePrimitiveList['primitives'][number];

/** Where each kind keeps the keys of those waiting (in order of arrival). */
const WAITERS: Partial<Record<Entry['kind'], (name: string) => string>> = {
  lock: (name) => `/muster/locks/${name}/waiters/`,
  semaphore: (name) => `/muster/semaphores/${name}/`,
  election: (name) => `/muster/elections/${name}/candidates/`,
  barrier: (name) => `/muster/barriers/${name}/waiters/`,
};

/** Locks, semaphores, elections, barriers and onces in use: holders with fencing tokens, waiters in order; live. */
export function Primitives(_props: PageProps) {
  const list = useLoad((signal) => client.listPrimitives(undefined, { signal }), []);
  const refresh = useThrottled(() => list.refresh(), 300);
  const { status } = useWatch('/muster/', () => refresh());
  return (
    <section aria-labelledby="primitives-title">
      <h1 id="primitives-title">
        Locks, semaphores, elections, barriers <span class="badge">{status}</span>
      </h1>
      {list.error && <p class="error">{list.error}</p>}
      {list.data && list.data.primitives.length === 0 && (
        <p class="muted">Nothing is held or waited for. Try: muster lock demo -- sleep 30</p>
      )}
      <div class="cards wide">
        {list.data?.primitives.map((p) => (
          <Primitive key={`${p.kind}/${p.name}/${list.data?.revision}`} entry={p} />
        ))}
      </div>
    </section>
  );
}

function Primitive({ entry }: { entry: Entry }) {
  const detail = useLoad(
    async (signal) => {
      const options = { signal };
      const waitersFolder = WAITERS[entry.kind]?.(entry.name);
      const waiters = waitersFolder
        ? (await client.list(waitersFolder, { keysOnly: true, signal })).kvs
            .slice()
            .sort((a, b) => a.createRevision - b.createRevision)
        : [];
      switch (entry.kind) {
        case 'lock':
          return { kind: 'lock' as const, status: await client.lockStatus(entry.name, options), waiters };
        case 'semaphore':
          return { kind: 'semaphore' as const, status: await client.semaphoreStatus(entry.name, options), waiters };
        case 'election':
          return { kind: 'election' as const, leader: await client.leader(entry.name, options), waiters };
        case 'barrier':
          return { kind: 'barrier' as const, status: await client.barrierStatus(entry.name, options), waiters };
        case 'once':
          return { kind: 'once' as const, status: await client.onceStatus(entry.name, options), waiters };
      }
    },
    [entry.kind, entry.name],
  );
  const d = detail.data;
  return (
    <article class="card" aria-label={`${entry.kind} ${entry.name}`}>
      <h2>
        <span class="kind">{entry.kind}</span> {entry.name}
      </h2>
      {detail.error && <p class="error">{detail.error}</p>}
      {d?.kind === 'lock' && (
        <>
          <Holders holders={d.status.holder ? [d.status.holder] : []} empty="free" />
          <Waiters waiters={d.waiters} skip={d.status.holder?.key} />
        </>
      )}
      {d?.kind === 'semaphore' && (
        <>
          <p>
            {d.status.holders.length} of {d.status.limit ?? '?'} slots held
          </p>
          <Holders holders={d.status.holders} empty="no holder" />
          <Waiters waiters={d.waiters} skip={d.status.holders.map((h) => h.key)} />
        </>
      )}
      {d?.kind === 'election' && (
        <>
          {d.leader ? (
            <dl class="meta">
              <dt>Leader</dt>
              <dd>{d.leader.value}</dd>
              <dt>Fencing token</dt>
              <dd class="token">{d.leader.token}</dd>
              <dt>Session</dt>
              <dd>
                <Lease id={d.leader.lease} />
              </dd>
            </dl>
          ) : (
            <p class="muted">no leader</p>
          )}
          <Waiters waiters={d.waiters} skip={d.leader?.key} label="Candidates behind" />
        </>
      )}
      {d?.kind === 'barrier' && (
        <p>
          {d.status.arrived} of {d.status.count ?? '?'} arrived ·{' '}
          <strong class={d.status.ready ? 'ok' : ''}>{d.status.ready ? 'released' : 'waiting'}</strong>
        </p>
      )}
      {d?.kind === 'once' && (
        <dl class="meta">
          <dt>State</dt>
          <dd>{d.status.state}</dd>
          {d.status.runner && (
            <>
              <dt>Runner's token</dt>
              <dd class="token">{d.status.runner.token}</dd>
            </>
          )}
          {d.status.result && (
            <>
              <dt>Exit code</dt>
              <dd>{d.status.result.exitCode}</dd>
            </>
          )}
          <dt>Waiting</dt>
          <dd>{d.status.waiting}</dd>
        </dl>
      )}
    </article>
  );
}

function Holders({
  holders,
  empty,
}: {
  holders: readonly { key: string; token: number; lease: string | null }[];
  empty: string;
}) {
  if (holders.length === 0) return <p class="muted">{empty}</p>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">Holder</th>
          <th scope="col">Fencing token</th>
          <th scope="col">Session</th>
        </tr>
      </thead>
      <tbody>
        {holders.map((h) => (
          <tr key={h.key}>
            <td>
              <code>{h.key.split('/').pop()}</code>
            </td>
            <td class="token">{h.token}</td>
            <td>
              <Lease id={h.lease} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Waiters({
  waiters,
  skip,
  label = 'Waiting, in order',
}: {
  waiters: readonly KeyValue[];
  skip?: string | readonly string[] | undefined;
  label?: string;
}) {
  const skipped = new Set(typeof skip === 'string' ? [skip] : (skip ?? []));
  const queue = waiters.filter((w) => !skipped.has(w.key));
  if (queue.length === 0) return null;
  return (
    <>
      <h3>{label}</h3>
      <ol class="waiters">
        {queue.map((w) => (
          <li key={w.key}>
            <code>{w.key.split('/').pop()}</code> <span class="muted">since @{w.createRevision}</span>
          </li>
        ))}
      </ol>
    </>
  );
}

function Lease({ id }: { id: string | null }) {
  const info = useLoad(async (signal) => (id === null ? null : client.leaseInfo(id, { signal })), [id]);
  if (id === null) return <span class="muted">none</span>;
  if (info.error) return <code>{id}</code>;
  return (
    <span>
      <code>{id}</code>{' '}
      {info.data && (
        <span class="muted">
          TTL {info.data.ttl}/{info.data.grantedTtl}s
        </span>
      )}
    </span>
  );
}
