import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { TimerHandle } from '../../src/core/clock.js';
import { seededRandom } from '../../src/core/runtime.js';

const START = 1_000_000;

describe('ManualClock', () => {
  it('fires timers in due-time order, then in the order they were set', () => {
    const clock = new ManualClock(START);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('c 30'), 30);
    clock.setTimeout(() => fired.push('a 10'), 10);
    clock.setTimeout(() => fired.push('d 20 first'), 20);
    clock.setTimeout(() => fired.push('e 20 second'), 20);
    clock.setTimeout(() => fired.push('b 0'), 0);
    clock.setTimeout(() => fired.push('f 20 third'), 20);
    clock.setTimeout(() => fired.push('negative is 0'), -5);
    expect(clock.nextTimerAt()).toBe(START);
    clock.advance(19);
    expect(fired).toEqual(['b 0', 'negative is 0', 'a 10']);
    expect(clock.now()).toBe(START + 19);
    clock.advance(100);
    expect(fired.slice(3)).toEqual(['d 20 first', 'e 20 second', 'f 20 third', 'c 30']);
    expect(clock.now()).toBe(START + 119);
    expect(clock.nextTimerAt()).toBeNull();
  });

  it('a callback sees the time it was due at; timers it sets that fall due within the advance fire too, after older ones due then', () => {
    const clock = new ManualClock(START);
    const seen: [string, number][] = [];
    clock.setTimeout(() => {
      seen.push(['outer', clock.now() - START]);
      clock.setTimeout(() => seen.push(['inner', clock.now() - START]), 5);
      clock.setTimeout(() => seen.push(['late', clock.now() - START]), 500);
    }, 10);
    clock.setTimeout(() => seen.push(['other', clock.now() - START]), 15);
    clock.advance(100);
    expect(seen).toEqual([
      ['outer', 10],
      ['other', 15],
      ['inner', 15],
    ]);
    expect(clock.nextTimerAt()).toBe(START + 510);
  });

  it('clearTimeout: a cleared timer never fires, even one cleared by a callback due at the same time', () => {
    const clock = new ManualClock(START);
    const fired: string[] = [];
    const a = clock.setTimeout(() => fired.push('a'), 10);
    clock.setTimeout(() => {
      fired.push('b');
      clock.clearTimeout(c);
    }, 20);
    const c = clock.setTimeout(() => fired.push('c'), 20);
    clock.setTimeout(() => fired.push('d'), 30);
    clock.clearTimeout(a);
    clock.clearTimeout(a); // twice: a no-op
    clock.clearTimeout({ id: 9999 }); // never set: a no-op
    expect(clock.nextTimerAt()).toBe(START + 20);
    clock.advance(100);
    expect(fired).toEqual(['b', 'd']);
    clock.clearTimeout(c); // already cleared and gone: a no-op
  });

  it('fireNext fires one timer at a time, moving time to it', () => {
    const clock = new ManualClock(START);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(2), 50);
    clock.setTimeout(() => fired.push(1), 20);
    expect(clock.fireNext()).toBe(true);
    expect(fired).toEqual([1]);
    expect(clock.now()).toBe(START + 20);
    expect(clock.fireNext()).toBe(true);
    expect(clock.now()).toBe(START + 50);
    expect(clock.fireNext()).toBe(false);
    expect(fired).toEqual([1, 2]);
  });

  it('keeps the order after the heap is rebuilt once most of its timers were cleared', () => {
    const clock = new ManualClock(START);
    const heapSize = () => (clock as unknown as { heap: unknown[] }).heap.length;
    const fired: number[] = [];
    const handles: TimerHandle[] = [];
    // 100 timers due at 10 distinct times, set in a scrambled order.
    for (let i = 0; i < 100; i++) {
      const n = (i * 37) % 100;
      handles[n] = clock.setTimeout(() => fired.push(n), (n % 10) * 10);
    }
    expect(heapSize()).toBe(100);
    // Clear 80 of them: the heap is rebuilt from the 20 left (cleared entries no longer wait in it).
    const kept = new Set<number>();
    for (let n = 0; n < 100; n++) {
      if (n % 5 === 0) kept.add(n);
      else clock.clearTimeout(handles[n] as TimerHandle);
    }
    expect(heapSize()).toBeLessThan(100);
    clock.advance(1000);
    const setOrder = (n: number) => Array.from({ length: 100 }, (_, i) => (i * 37) % 100).indexOf(n);
    const expected = [...kept].sort((a, b) => (a % 10) - (b % 10) || setOrder(a) - setOrder(b));
    expect(fired).toEqual(expected);
  });

  it('agrees with a simple model over random rounds of set, clear and advance', () => {
    const random = seededRandom(20_261_204);
    const clock = new ManualClock(START);
    const heapSize = () => (clock as unknown as { heap: unknown[] }).heap.length;
    // A timer whose label is a multiple of 7 sets another when it fires (on both sides).
    const childDelay = (label: number) => (label * 13) % 50;

    // The clock under test: each timer pushes its label when it fires.
    const handles = new Map<number, TimerHandle>();
    const fired: number[] = [];
    let realLabels = 0;
    const realSet = (ms: number): void => {
      const label = realLabels++;
      const handle = clock.setTimeout(() => {
        fired.push(label);
        handles.delete(label);
        if (label % 7 === 0) realSet(childDelay(label));
      }, ms);
      handles.set(label, handle);
    };

    // The model: a plain list, the next timer found by a full scan for the lowest (due, label).
    let model: { readonly label: number; readonly at: number }[] = [];
    let modelNow = START;
    let modelLabels = 0;
    const modelSet = (ms: number): void => {
      model.push({ label: modelLabels++, at: modelNow + Math.max(0, ms) });
    };
    const modelNext = () =>
      model.reduce<(typeof model)[number] | null>(
        (a, b) => (a === null || b.at < a.at || (b.at === a.at && b.label < a.label) ? b : a),
        null,
      );
    const modelAdvance = (ms: number): number[] => {
      const target = modelNow + ms;
      const out: number[] = [];
      for (;;) {
        const next = modelNext();
        if (next === null || next.at > target) break;
        model = model.filter((t) => t !== next);
        modelNow = Math.max(modelNow, next.at);
        out.push(next.label);
        if (next.label % 7 === 0) modelSet(childDelay(next.label));
      }
      modelNow = target;
      return out;
    };

    let rebuilt = false;
    let advances = 0;
    for (let round = 0; round < 200; round++) {
      const op = random();
      if (op < 0.45) {
        // Set a few timers; due times are coarse so that equal ones are common (some negative: due now).
        const count = 1 + Math.floor(random() * 16);
        for (let i = 0; i < count; i++) {
          const ms = Math.floor(random() * 40) * 50 - 5;
          realSet(ms);
          modelSet(ms);
        }
      } else if (op < 0.8) {
        // Clear up to about half of the timers set.
        const live = model.map((t) => t.label);
        const count = Math.floor(random() * (live.length / 2 + 1));
        for (let i = 0; i < count && live.length > 0; i++) {
          const label = live.splice(Math.floor(random() * live.length), 1)[0] as number;
          const before = heapSize();
          clock.clearTimeout(handles.get(label) as TimerHandle);
          if (heapSize() < before) rebuilt = true;
          handles.delete(label);
          model = model.filter((t) => t.label !== label);
        }
      } else {
        const ms = Math.floor(random() * 150);
        fired.length = 0;
        clock.advance(ms);
        expect([...fired], `round ${round}: advance ${ms}`).toEqual(modelAdvance(ms));
        advances++;
      }
      expect(clock.now(), `round ${round}`).toBe(modelNow);
      expect(clock.nextTimerAt(), `round ${round}`).toBe(modelNext()?.at ?? null);
      expect(realLabels, `round ${round}`).toBe(modelLabels);
    }
    // What the rounds covered: some advances, a heap rebuild, and at the end all that is left fires in order.
    expect(advances).toBeGreaterThan(10);
    expect(rebuilt, 'the rounds cleared enough timers for the heap to be rebuilt').toBe(true);
    fired.length = 0;
    clock.advance(10_000);
    const rest = modelAdvance(10_000);
    expect(rest.length).toBeGreaterThan(0);
    expect(fired).toEqual(rest);
  });
});
