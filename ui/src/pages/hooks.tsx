import { useState } from 'preact/hooks';
import type { HookView } from '../../../src/client/hook-types.js';
import type { PageProps } from '../app.js';
import { client, messageOf } from '../api.js';
import { ago } from '../format.js';
import { useLoad } from '../hooks.js';

/** #/hooks: the webhooks, their status and failures; a hook's delivery log; pause and resume. */
export function Hooks(_props: PageProps) {
  const hooks = useLoad((signal) => client.listHooks({ signal }), []);
  const [open, setOpen] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const act = async (hook: HookView, what: 'pause' | 'resume') => {
    try {
      if (what === 'pause') await client.pauseHook(hook.name);
      else await client.resumeHook(hook.name);
      hooks.refresh();
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <section aria-labelledby="hooks-title">
      <h1 id="hooks-title">Webhooks</h1>
      <p>
        <button type="button" onClick={() => hooks.refresh()}>
          Refresh
        </button>
      </p>
      {(hooks.error ?? error) && <p class="error">{hooks.error ?? error}</p>}
      {hooks.data && hooks.data.length === 0 && (
        <p class="muted">No webhooks. Add one with: muster hook add NAME --prefix /ephemerals/ --url https://…</p>
      )}
      {hooks.data && hooks.data.length > 0 && (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Hook</th>
                <th scope="col">Prefix → URL</th>
                <th scope="col">Status</th>
                <th scope="col">Delivered</th>
                <th scope="col">Failures</th>
                <th scope="col"></th>
              </tr>
            </thead>
            <tbody>
              {hooks.data.map((h) => (
                <tr key={h.name}>
                  <td>
                    <button type="button" class="link" onClick={() => setOpen(open === h.name ? null : h.name)}>
                      {h.name}
                    </button>
                  </td>
                  <td>
                    <code>{h.prefix}</code> → <code>{h.url}</code>
                  </td>
                  <td>
                    <span class={`hook-${h.status}`}>{h.status}</span>
                    {h.missed && (
                      <span class="error">
                        {' '}
                        missed revisions {h.missed.from}–{h.missed.to}
                      </span>
                    )}
                  </td>
                  <td>{h.delivered}</td>
                  <td>
                    {h.failures}
                    {h.lastError && <span class="muted"> {h.lastError}</span>}
                  </td>
                  <td>
                    {h.status === 'paused' ? (
                      <button type="button" onClick={() => void act(h, 'resume')}>
                        Resume
                      </button>
                    ) : (
                      <button type="button" onClick={() => void act(h, 'pause')}>
                        Pause
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {open && <Deliveries name={open} key={open} />}
    </section>
  );
}

function Deliveries({ name }: { name: string }) {
  const log = useLoad((signal) => client.hookDeliveries(name, { signal }), [name]);
  return (
    <>
      <h2>Deliveries of {name}</h2>
      {log.error && <p class="error">{log.error}</p>}
      {log.data && log.data.length === 0 && <p class="muted">No attempts yet.</p>}
      {log.data && log.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Status</th>
              <th scope="col">Latency</th>
              <th scope="col">Attempt</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {log.data
              .slice()
              .reverse()
              .map((d, i) => (
                <tr key={i}>
                  <td>{ago(d.at)}</td>
                  <td class={d.status >= 200 && d.status < 300 ? 'ok' : 'bad'}>{d.status || '-'}</td>
                  <td>{d.latencyMs} ms</td>
                  <td>{d.attempt}</td>
                  <td>{d.error ?? ''}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </>
  );
}
