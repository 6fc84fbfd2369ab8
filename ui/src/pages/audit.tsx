import { useState } from 'preact/hooks';
import type { PageProps } from '../app.js';
import { client } from '../api.js';
import { useLoad } from '../hooks.js';

/** Who did what: the audit log, newest first, filtered by token or by a time back. */
export function Audit({ who }: PageProps) {
  const [since, setSince] = useState('24h');
  const [token, setToken] = useState('');
  const records = useLoad(
    (signal) => client.audit({ since, limit: 1000, ...(token ? { token } : {}) }, { signal }),
    [since, token],
  );
  if (!who.auth) return <p class="muted">This server runs without auth: it keeps no audit log.</p>;
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit</h1>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget as HTMLFormElement);
          setSince(String(data.get('since') || '24h'));
          setToken(String(data.get('token') ?? '').trim());
        }}
      >
        <label for="since">Since</label>
        <input id="since" name="since" defaultValue={since} size={8} />
        <label for="token-filter">Token id</label>
        <input id="token-filter" name="token" defaultValue={token} size={14} />
        <button type="submit">Filter</button>
        <button type="button" onClick={() => records.refresh()}>
          Refresh
        </button>
      </form>
      {records.error && <p class="error">{records.error}</p>}
      {records.data && records.data.length === 0 && <p class="muted">No records.</p>}
      {records.data && records.data.length > 0 && (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Token</th>
                <th scope="col">Role</th>
                <th scope="col">What</th>
                <th scope="col">Target</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {records.data
                .slice()
                .reverse()
                .map((r, i) => (
                  <tr key={i}>
                    <td>{new Date(r.at).toLocaleString()}</td>
                    <td>
                      <code>{r.tokenId}</code>
                    </td>
                    <td>{r.role}</td>
                    <td>
                      {r.method} {r.route}
                    </td>
                    <td>
                      <code>{r.target}</code>
                    </td>
                    <td>{r.status}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
