import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { JobRecord, JobView, NodeJobRecord, OutputChunk } from '../../../src/client/job-types.js';
import type { PageProps } from '../app.js';
import { client, messageOf } from '../api.js';
import { ago } from '../format.js';
import { useLoad, useThrottled, useWatch } from '../hooks.js';
import { VirtualList } from '../virtual-list.js';

const FINISHED = new Set(['complete', 'failed', 'quorum_failed', 'aborted', 'timed_out']);
const STATES = ['', 'voting', 'running', 'complete', 'failed', 'quorum_failed', 'aborted', 'timed_out'];

/** #/jobs: the jobs, newest first; #/jobs/<id>: one job, its nodes, their output, live. */
export function Jobs(props: PageProps) {
  // Keyed by the id: another job (a link, the back button, an edited hash) is a fresh
  // view, with nothing of the last one's state (its selected node, its error, its record).
  return props.route[0] ? <JobDetail key={props.route[0]} id={props.route[0]} /> : <JobList />;
}

function JobList() {
  const [state, setState] = useState('');
  const jobs = useLoad((signal) => client.listJobs({ limit: 500, ...(state ? { state } : {}) }, { signal }), [state]);
  const refresh = useThrottled(() => jobs.refresh(), 1000);
  const { status } = useWatch('/muster/jobs/', refresh);
  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">
        Jobs <span class="badge">{status}</span>
      </h1>
      <form class="inline" onSubmit={(e) => e.preventDefault()}>
        <label for="job-state">State</label>
        <select id="job-state" value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
          {STATES.map((s) => (
            <option value={s} key={s}>
              {s === '' ? 'any' : s}
            </option>
          ))}
        </select>
        <span class="muted">Start one with: muster run 'role:web' chef-client</span>
      </form>
      {jobs.error && <p class="error">{jobs.error}</p>}
      {jobs.data && jobs.data.length === 0 && <p class="muted">No jobs.</p>}
      {jobs.data && jobs.data.length > 0 && (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Command</th>
                <th scope="col">Nodes</th>
                <th scope="col">State</th>
                <th scope="col">Progress</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.map((job) => (
                <tr key={job.id}>
                  <td>
                    <a href={`#/jobs/${encodeURIComponent(job.id)}`}>{job.id}</a>
                  </td>
                  <td>
                    <code>{[job.command, ...job.args].join(' ')}</code>
                  </td>
                  <td>
                    <code>{job.query}</code> <span class="muted">({job.nodes.length})</span>
                  </td>
                  <td>
                    <span class={`state state-${job.state}`}>{job.state}</span>
                  </td>
                  <td>
                    <Progress job={job} />
                  </td>
                  <td>{ago(job.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Progress({ job }: { job: JobView }) {
  const total = job.nodes.length || 1;
  const done = job.counts.succeeded ?? 0;
  const failed =
    (job.counts.failed ?? 0) +
    (job.counts.timed_out ?? 0) +
    (job.counts.rejected ?? 0) +
    (job.counts.unreachable ?? 0) +
    (job.counts.aborted ?? 0);
  const running = job.counts.running ?? 0;
  return (
    <span class="progress" title={`${done} done, ${running} running, ${failed} failed of ${job.nodes.length}`}>
      <meter min={0} max={total} value={done + failed} />{' '}
      <span class="muted">
        {done}✓ {running}▶ {failed}✗ / {job.nodes.length}
      </span>
    </span>
  );
}

function JobDetail({ id }: { id: string }) {
  const [job, setJob] = useState<JobRecord | null>(null);
  const [nodes, setNodes] = useState<Map<string, NodeJobRecord>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const [streamState, setStreamState] = useState('connecting');
  const [selected, setSelected] = useState<string | null>(null);
  const [output, setOutput] = useState<{ node: string; chunks: OutputChunk[]; truncated: boolean } | null>(null);
  const [outputError, setOutputError] = useState<string | null>(null);
  const selectedRef = useRef<string | null>(null);
  selectedRef.current = selected;

  useEffect(() => {
    const controller = new AbortController();
    setNodes(new Map());
    void (async () => {
      try {
        const view = await client.getJob(id, { signal: controller.signal });
        setJob(view);
        setNodes(new Map((view.nodeStates ?? []).map((n) => [n.node, n])));
        setStreamState('live');
        for await (const event of client.jobEvents(id, { signal: controller.signal })) {
          if (event.type === 'job') setJob(event.job);
          else if (event.type === 'node') setNodes((m) => new Map(m).set(event.node.node, event.node));
          else if (event.type === 'output') {
            const chunk = event.chunk;
            if (chunk.node === selectedRef.current) {
              setOutput((o) =>
                o && o.node === chunk.node && !o.chunks.some((c) => c.seq === chunk.seq)
                  ? { ...o, chunks: [...o.chunks, chunk] }
                  : o,
              );
            }
          } else if (event.type === 'end') {
            // The final word: the job as stored once the stream says it is over.
            const final = await client.getJob(id, { signal: controller.signal });
            if (controller.signal.aborted) return;
            setJob(final);
            setNodes(new Map((final.nodeStates ?? []).map((n) => [n.node, n])));
            setStreamState('finished');
          }
        }
      } catch (err) {
        if (!controller.signal.aborted) setError(messageOf(err));
      }
    })();
    return () => controller.abort();
  }, [id]);

  // A node has a part (and output) only once the job leaves voting: until then its
  // output is empty, and it is read again when the node's state first arrives.
  const selectedKnown = selected !== null && nodes.has(selected);
  useEffect(() => {
    if (selected === null) return;
    const controller = new AbortController();
    setOutputError(null);
    setOutput((o) => (o && o.node === selected ? o : { node: selected, chunks: [], truncated: false }));
    if (!selectedKnown) return () => controller.abort();
    client.jobOutput(id, selected, { signal: controller.signal }).then(
      (out) =>
        !controller.signal.aborted &&
        setOutput((o) => {
          const seen = new Set(out.chunks.map((c) => c.seq));
          const later = o && o.node === selected ? o.chunks.filter((c) => !seen.has(c.seq)) : [];
          return { node: selected, chunks: [...out.chunks, ...later], truncated: out.truncated };
        }),
      (err: unknown) => !controller.signal.aborted && setOutputError(messageOf(err)),
    );
    return () => controller.abort();
  }, [id, selected, selectedKnown]);

  const list = useMemo(() => [...nodes.values()].sort((a, b) => a.node.localeCompare(b.node)), [nodes]);
  if (error) return <p class="error">{error}</p>;
  if (!job) return <p class="muted">Loading…</p>;
  const abort = async () => {
    try {
      const answer = await client.abortJob(id);
      // The stream may already have delivered the aborted job: never step back from a final state.
      setJob((current) => (current && FINISHED.has(current.state) ? current : answer));
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <section aria-labelledby="job-title">
      <p>
        <a href="#/jobs">← Jobs</a>
      </p>
      <h1 id="job-title">
        Job {job.id} <span class={`state state-${job.state}`}>{job.state}</span>{' '}
        <span class="badge">{streamState}</span>
      </h1>
      <dl class="meta">
        <dt>Command</dt>
        <dd>
          <code>{[job.command, ...job.args].join(' ')}</code>
        </dd>
        <dt>Nodes</dt>
        <dd>
          <code>{job.query}</code>: {job.nodes.length} of {job.matched} matched
        </dd>
        <dt>Limits</dt>
        <dd>
          concurrency {job.concurrency || 'all'}, timeout {Math.round(job.timeoutMs / 1000)} s
        </dd>
        {job.reason && (
          <>
            <dt>Why</dt>
            <dd>{job.reason}</dd>
          </>
        )}
        <dt>Started by</dt>
        <dd>
          <code>{job.createdBy}</code> {ago(job.createdAt)}
        </dd>
      </dl>
      {!FINISHED.has(job.state) && !job.abortRequested && (
        <button type="button" class="danger" onClick={() => void abort()}>
          Abort job
        </button>
      )}
      <div class="split">
        <div>
          <h2>Nodes</h2>
          <VirtualList
            items={list}
            rowHeight={32}
            height={Math.min(480, Math.max(96, list.length * 32))}
            label="The job's nodes"
            header={
              <>
                <span>Node</span>
                <span>State</span>
                <span>Exit</span>
              </>
            }
            row={(n) => (
              <>
                <span>{n.node}</span>
                <span class={`state state-${n.state}`}>{n.state}</span>
                <span>{n.exitCode ?? n.signal ?? ''}</span>
              </>
            )}
            onOpen={(n) => setSelected(n.node)}
          />
        </div>
        <div class="detail">
          <h2>{selected ? `Output of ${selected}` : 'Output'}</h2>
          {!selected && <p class="muted">Pick a node.</p>}
          {selected && outputError && <p class="error">{outputError}</p>}
          {output && output.node === selected && (
            <>
              {output.truncated && <p class="muted">Older output was dropped (the server keeps the last part).</p>}
              <pre class="value output" aria-live="polite">
                {output.chunks.map((c) => (
                  <span class={c.stream === 'stderr' ? 'stderr' : ''} key={c.seq}>
                    {c.encoding === 'base64' ? atob(c.data) : c.data}
                  </span>
                ))}
              </pre>
            </>
          )}
        </div>
      </div>
    </section>
  );
}
