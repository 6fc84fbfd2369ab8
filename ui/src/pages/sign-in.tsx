import { useState } from 'preact/hooks';
import type { WireWhoAmI } from '../../../src/api/wire.js';
import { client, messageOf } from '../api.js';

export function SignIn({ onSignedIn }: { onSignedIn: (who: WireWhoAmI) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await client.startUiSession(token);
      setToken('');
      onSignedIn(await client.whoami());
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>muster</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label for="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          autofocus
          required
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy || token.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error !== null && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p class="muted">
        On the server's machine the admin token is in <code>muster-data/admin.token</code>; make others with{' '}
        <code>muster token create --role reader</code>. The page keeps no token: signing in gives this browser a session
        cookie, and signing out ends it.
      </p>
    </main>
  );
}
