import { useEffect, useState } from 'preact/hooks';
import type { WireWhoAmI } from '../../src/api/wire.js';
import { client, isSignedOut, messageOf } from './api.js';
import { useRoute } from './hooks.js';
import { SignIn } from './pages/sign-in.js';
import { Overview } from './pages/overview.js';
import { Keys } from './pages/keys.js';
import { Primitives } from './pages/primitives.js';
import { Audit } from './pages/audit.js';
import { Jobs } from './pages/jobs.js';
import { Nodes } from './pages/nodes.js';
import { Plans } from './pages/plans.js';
import { Hooks } from './pages/hooks.js';
import { Theme } from './theme.js';

/** Pages in the navigation: hash route, label, the page. */
const PAGES = [
  { id: 'overview', label: 'Overview', page: Overview },
  { id: 'nodes', label: 'Nodes', page: Nodes },
  { id: 'keys', label: 'Keys', page: Keys },
  { id: 'jobs', label: 'Jobs', page: Jobs },
  { id: 'plans', label: 'Plans', page: Plans },
  { id: 'primitives', label: 'Locks & elections', page: Primitives },
  { id: 'hooks', label: 'Hooks', page: Hooks },
  { id: 'audit', label: 'Audit', page: Audit },
] as const;

export function App() {
  const [who, setWho] = useState<WireWhoAmI | null | undefined>(undefined);
  const [problem, setProblem] = useState<string | null>(null);
  const route = useRoute();

  useEffect(() => {
    client.whoami().then(setWho, (error: unknown) => {
      if (isSignedOut(error)) setWho(null);
      else setProblem(messageOf(error));
    });
  }, []);

  // Any request that finds the session gone brings the sign-in page back.
  useEffect(() => {
    const onRejection = (event: PromiseRejectionEvent) => {
      if (isSignedOut(event.reason)) setWho(null);
    };
    addEventListener('unhandledrejection', onRejection);
    return () => removeEventListener('unhandledrejection', onRejection);
  }, []);

  if (problem !== null) return <p class="error page-error">Cannot reach muster: {problem}</p>;
  if (who === undefined) return <p class="muted page-error">Loading…</p>;
  if (who === null) return <SignIn onSignedIn={setWho} />;

  const current = PAGES.find((p) => p.id === route[0]) ?? PAGES[0];
  const Page = current.page;
  const signOut = async () => {
    await client.endUiSession().catch(() => undefined);
    setWho(null);
  };
  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/overview">
          muster
        </a>
        <nav aria-label="Pages">
          {PAGES.map((p) => (
            <a href={`#/${p.id}`} aria-current={p.id === current.id ? 'page' : undefined} key={p.id}>
              {p.label}
            </a>
          ))}
        </nav>
        <div class="who">
          <span title={who.policy}>{who.auth ? `${who.role} · ${who.tokenId}` : 'no auth (demo server)'}</span>
          <Theme />
          {who.auth && (
            <button type="button" onClick={() => void signOut()}>
              Sign out
            </button>
          )}
        </div>
      </header>
      <main id="main">
        <Page route={route.slice(1)} who={who} />
      </main>
    </div>
  );
}

export interface PageProps {
  /** The route after the page's own segment (#/keys/a/b → ["a", "b"]). */
  readonly route: string[];
  readonly who: WireWhoAmI;
}
