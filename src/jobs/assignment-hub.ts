/**
 * One watch of `/muster/assign/` per server, shared by every agent's assignment
 * stream on it: 10,000 connected agents cost one store watch, not 10,000, and an
 * event reaches its node's stream through a map lookup. A stream first gets the
 * node's current assignments (those written at or after the revision it resumes
 * from), then the live ones after that read, in order.
 */
import type { Assignment, AssignmentEvent } from '../api/agent-protocol.js';
import type { Backend, Watch } from '../core/backend.js';
import type { Clock } from '../core/clock.js';
import { sleep } from '../core/clock.js';
import { ASSIGN_PREFIX, decodeJson, keys } from './job-model.js';

type Listener = (event: AssignmentEvent) => void;

export class AssignmentHub {
  private readonly listeners = new Map<string, Set<Listener>>();
  private watch: Watch | null = null;
  private starting: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
  ) {}

  /**
   * Follow `node`'s assignments written at or after `fromRevision` (all current ones
   * when absent): `deliver` gets each, in revision order. Returns a function that stops.
   */
  async follow(node: string, fromRevision: number | undefined, deliver: Listener): Promise<() => void> {
    await this.ensureWatch();
    let readAt = Infinity;
    const buffered: AssignmentEvent[] = [];
    let live = false;
    const listener: Listener = (event) => {
      if (live) {
        if (event.revision > readAt) deliver(event);
      } else buffered.push(event);
    };
    let set = this.listeners.get(node);
    if (!set) {
      set = new Set();
      this.listeners.set(node, set);
    }
    set.add(listener);
    const stop = () => {
      const current = this.listeners.get(node);
      current?.delete(listener);
      if (current?.size === 0) this.listeners.delete(node);
    };
    try {
      const range = await this.backend.range({ key: keys.assignments(node), prefix: true });
      readAt = range.revision;
      const current = range.kvs
        .filter((kv) => fromRevision === undefined || kv.modRevision >= fromRevision)
        .sort((a, b) => a.modRevision - b.modRevision);
      for (const kv of current) deliver({ revision: kv.modRevision, assignment: decodeJson<Assignment>(kv.value) });
      live = true;
      for (const event of buffered) if (event.revision > readAt) deliver(event);
    } catch (error) {
      stop();
      throw error;
    }
    return stop;
  }

  private ensureWatch(): Promise<void> {
    if (this.watch || this.closed) return Promise.resolve();
    this.starting ??= (async () => {
      const from = (await this.backend.revision()) + 1;
      this.startWatch(from);
    })();
    return this.starting;
  }

  private startWatch(from: number): void {
    const watch = this.backend.watch(ASSIGN_PREFIX, { prefix: true, fromRevision: from });
    this.watch = watch;
    void (async () => {
      let next = from;
      try {
        for await (const batch of watch) {
          for (const event of batch.events) {
            next = event.revision + 1;
            if (event.type !== 'put') continue;
            const rest = event.kv.key.slice(ASSIGN_PREFIX.length);
            const slash = rest.indexOf('/');
            const set = this.listeners.get(rest.slice(0, slash));
            if (!set) continue;
            let assignment: Assignment;
            try {
              assignment = decodeJson<Assignment>(event.kv.value);
            } catch {
              continue;
            }
            for (const listener of set) listener({ revision: event.revision, assignment });
          }
        }
      } catch {
        // Lost (a compaction overtook it, the store went away): start again below.
      }
      if (this.closed || this.watch !== watch) return;
      // Streams already open keep their place: events from where this watch stopped
      // (or, when that history is gone, from now: agents resume with a reconnect).
      await sleep(this.clock, 200);
      const oldest = await this.backend.oldestRevision().catch(() => next);
      if (this.closed) return;
      this.startWatch(Math.max(next, oldest));
    })();
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
    this.watch = null;
    this.listeners.clear();
  }
}
