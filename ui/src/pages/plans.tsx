import { useEffect, useState } from 'preact/hooks';
import type { PlanRecord } from '../../../src/client/plan-types.js';
import type { PageProps } from '../app.js';
import { client, messageOf } from '../api.js';
import { ago } from '../format.js';
import { useLoad, useThrottled, useWatch } from '../hooks.js';

const FINAL = new Set(['complete', 'failed', 'aborted', 'rolled_back']);

/** #/plans: the plans; #/plans/<id>: one plan, its steps as a graph with their batches, live. */
export function Plans({ route }: PageProps) {
  // Keyed: another plan by its hash is a fresh view (no last plan's record or error).
  return route[0] ? <PlanDetail key={route[0]} id={route[0]} /> : <PlanList />;
}

function PlanList() {
  const plans = useLoad((signal) => client.listPlans({ limit: 200 }, { signal }), []);
  const refresh = useThrottled(() => plans.refresh(), 1000);
  const { status } = useWatch('/muster/plans/', refresh);
  return (
    <section aria-labelledby="plans-title">
      <h1 id="plans-title">
        Plans <span class="badge">{status}</span>
      </h1>
      {plans.error && <p class="error">{plans.error}</p>}
      {plans.data && plans.data.length === 0 && (
        <p class="muted">No plans. Apply one with: muster plan apply release.yaml</p>
      )}
      {plans.data && plans.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Plan</th>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Steps</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {plans.data.map((p) => (
              <tr key={p.id}>
                <td>
                  <a href={`#/plans/${encodeURIComponent(p.id)}`}>{p.id}</a>
                </td>
                <td>{p.name}</td>
                <td>
                  <span class={`state state-${p.state}`}>{p.state}</span>
                </td>
                <td>
                  {p.steps.filter((s) => s.state === 'complete').length}/{p.steps.length}
                </td>
                <td>{ago(p.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Each step's column: how many `after` hops from a step with none. */
function levels(plan: PlanRecord): PlanRecord['steps'][] {
  const depth = new Map<string, number>();
  const of = (id: string, seen: Set<string>): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    const step = plan.steps.find((s) => s.id === id);
    if (!step || seen.has(id)) return 0;
    seen.add(id);
    const d = step.after.length === 0 ? 0 : 1 + Math.max(...step.after.map((a) => of(a, seen)));
    depth.set(id, d);
    return d;
  };
  const columns: PlanRecord['steps'][] = [];
  for (const step of plan.steps) (columns[of(step.id, new Set())] ??= []).push(step);
  return columns.filter(Boolean);
}

function PlanDetail({ id }: { id: string }) {
  const [plan, setPlan] = useState<PlanRecord | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState('connecting');
  useEffect(() => {
    const controller = new AbortController();
    void (async () => {
      try {
        setPlan(await client.getPlan(id, { signal: controller.signal }));
        setLive('live');
        for await (const record of client.planEvents(id, { signal: controller.signal })) setPlan(record);
        setPlan(await client.getPlan(id, { signal: controller.signal }));
        setLive('finished');
      } catch (err) {
        if (!controller.signal.aborted) setError(messageOf(err));
      }
    })();
    return () => controller.abort();
  }, [id]);
  if (error) return <p class="error">{error}</p>;
  if (!plan) return <p class="muted">Loading…</p>;
  const act = async (what: 'pause' | 'resume' | 'abort') => {
    try {
      const next =
        what === 'pause'
          ? await client.pausePlan(id)
          : what === 'resume'
            ? await client.resumePlan(id)
            : await client.abortPlan(id);
      setPlan((current) => (current && FINAL.has(current.state) ? current : next));
    } catch (err) {
      setError(messageOf(err));
    }
  };
  const ended = FINAL.has(plan.state);
  return (
    <section aria-labelledby="plan-title">
      <p>
        <a href="#/plans">← Plans</a>
      </p>
      <h1 id="plan-title">
        Plan {plan.name} <span class={`state state-${plan.state}`}>{plan.state}</span> <span class="badge">{live}</span>
      </h1>
      <p class="muted">
        {plan.id} · started {ago(plan.createdAt)} by <code>{plan.createdBy}</code> · on failure: {plan.onFailure}
        {plan.reason && (
          <>
            {' '}
            · <span class="error">{plan.reason}</span>
          </>
        )}
      </p>
      {!ended && (
        <div class="inline">
          {plan.state === 'paused' || plan.pauseRequested ? (
            <button type="button" onClick={() => void act('resume')}>
              Resume
            </button>
          ) : (
            <button type="button" onClick={() => void act('pause')}>
              Pause
            </button>
          )}{' '}
          <button type="button" class="danger" onClick={() => void act('abort')}>
            Abort plan
          </button>
        </div>
      )}
      <div class="plan-graph" aria-label="Steps in order">
        {levels(plan).map((column, i) => (
          <div class="plan-column" key={i}>
            {column.map((step) => (
              <article class={`card step step-${step.state}`} aria-label={`step ${step.id}`} key={step.id}>
                <h2>
                  {step.id} <span class={`state state-${step.state}`}>{step.state}</span>
                </h2>
                <p class="muted">
                  group {step.group}
                  {step.after.length > 0 && ` · after ${step.after.join(', ')}`}
                </p>
                {step.reason && <p class="error">{step.reason}</p>}
                <ol class="batches">
                  {step.batches.map((b, n) => (
                    <li key={n} class={`batch batch-${b.state}`} title={b.reason ?? b.nodes.join(', ')}>
                      <span class="muted">{n === 0 && step.batches.length > 1 ? 'canary' : `batch ${n + 1}`}</span>{' '}
                      <span class={`state state-${b.state}`}>{b.state}</span> {b.nodes.length} node
                      {b.nodes.length === 1 ? '' : 's'}
                      {b.jobId && (
                        <>
                          {' '}
                          · <a href={`#/jobs/${encodeURIComponent(b.jobId)}`}>job</a>
                        </>
                      )}
                    </li>
                  ))}
                </ol>
                {step.skipped.length > 0 && <p class="muted">down, catch up on return: {step.skipped.join(', ')}</p>}
              </article>
            ))}
          </div>
        ))}
      </div>
    </section>
  );
}
