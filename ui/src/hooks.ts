import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { WatchEvent } from '../../src/core/backend.js';
import { client, messageOf } from './api.js';

/** Data that loads, reloads on `deps`, and on `refresh()`; live pages call refresh on each change. */
export function useLoad<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: readonly unknown[],
): { data: T | undefined; error: string | null; loading: boolean; refresh: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  // A layout effect: the request leaves as soon as the page is rendered, not a
  // frame later (useEffect waits for the next paint; 30-150 ms on a loaded machine).
  useLayoutEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    load(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (controller.signal.aborted) return;
        setError(messageOf(err));
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [...deps, tick]);
  return { data, error, loading, refresh: () => setTick((t) => t + 1) };
}

/**
 * A live watch of `prefix` from now on (the SSE stream, through the client, which
 * resumes after a dropped connection): calls `onEvent` for each change. `enabled`
 * false stops it.
 */
export function useWatch(prefix: string | null, onEvent: (event: WatchEvent) => void): { status: string } {
  const [status, setStatus] = useState('connecting');
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    if (prefix === null) return;
    const controller = new AbortController();
    setStatus('connecting');
    void (async () => {
      try {
        const start = await client.listWire(prefix, { limit: 1, keysOnly: true, signal: controller.signal });
        for await (const event of client.watch(prefix, {
          fromRevision: start.revision + 1,
          signal: controller.signal,
          onStatus: (s) => setStatus(s.type === 'connected' ? 'live' : `reconnecting (${messageOf(s.error)})`),
        })) {
          handler.current(event);
        }
      } catch (error) {
        if (!controller.signal.aborted) setStatus(`stopped: ${messageOf(error)}`);
      }
    })();
    return () => controller.abort();
  }, [prefix]);
  return { status };
}

/** Calls `fn` at most once per `ms` (the last call wins), for refreshes driven by a stream of events. */
export function useThrottled(fn: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  return () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  };
}

/** The current hash route ("#/keys/config" → ["keys", "config"]). */
export function useRoute(): string[] {
  const read = () =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const update = () => setRoute(read());
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}
