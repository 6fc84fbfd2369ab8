/**
 * An AbortSignal that aborts on the first SIGINT or SIGTERM, for commands that run
 * until interrupted. The handlers are removed as soon as one fires, so a second
 * Ctrl-C terminates the process the usual way if a graceful stop hangs.
 */
export function untilInterrupted(): { readonly signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  // Signal handlers alone do not keep Node running, and the system clock's timers
  // are unref'd: hold the process open until interrupted or disposed.
  const holdOpen = setInterval(() => undefined, 1 << 30);
  const onSignal = (name: NodeJS.Signals): void => {
    dispose();
    controller.abort(new Error(`interrupted by ${name}`));
  };
  const dispose = (): void => {
    clearInterval(holdOpen);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { signal: controller.signal, dispose };
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
