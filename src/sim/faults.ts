import { InvalidArgumentError } from '../core/errors.js';
import type { DurationRange } from './scenario.js';
import { range } from './scenario.js';

/**
 * What goes wrong in a simulation (`--faults crash=5%,delay=0-3s,partition=2%`).
 * Probabilities are per step a node starts.
 */
export interface Faults {
  /** A node's incarnation dies (its lease is left to expire), returns after `downtime` and starts over. */
  readonly crash: number;
  /** How long a crashed node stays down. @default 1s-30s */
  readonly downtime: DurationRange;
  /** Extra delay before each request a node sends. @default none */
  readonly delay: DurationRange | null;
  /** A node is cut off from the server (no request, no keepalive goes through) for `cut`. */
  readonly partition: number;
  /** How long a partition lasts. @default from half the session TTL to twice it */
  readonly cut: DurationRange | null;
}

export const NO_FAULTS: Faults = {
  crash: 0,
  downtime: { min: 1000, max: 30_000 },
  delay: null,
  partition: 0,
  cut: null,
};

const NAMES = ['crash', 'downtime', 'delay', 'partition', 'cut'] as const;

/** Parse `crash=5%,delay=0-3s,partition=2%,downtime=5-30s,cut=5-20s` (empty: no faults). */
export function parseFaults(text: string): Faults {
  let faults: Faults = NO_FAULTS;
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '' || part === 'none') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!(NAMES as readonly string[]).includes(name) || value === '')
      throw new InvalidArgumentError(
        `faults: "${part}" is not one of crash=P%, partition=P%, delay=A-B, downtime=A-B, cut=A-B (such as crash=5%,delay=0-3s)`,
      );
    const what = `faults: ${name}`;
    switch (name as (typeof NAMES)[number]) {
      case 'crash':
        faults = { ...faults, crash: probability(value, what) };
        break;
      case 'partition':
        faults = { ...faults, partition: probability(value, what) };
        break;
      case 'delay':
        faults = { ...faults, delay: durations(value, what) };
        break;
      case 'downtime':
        faults = { ...faults, downtime: durations(value, what) };
        break;
      case 'cut':
        faults = { ...faults, cut: durations(value, what) };
        break;
    }
  }
  return faults;
}

/** `5%` or `0.05`. */
function probability(text: string, what: string): number {
  const percent = text.endsWith('%');
  const number = Number(percent ? text.slice(0, -1) : text);
  const p = percent ? number / 100 : number;
  if (!/^\d+(\.\d+)?%?$/.test(text) || !Number.isFinite(p) || p < 0 || p > 1)
    throw new InvalidArgumentError(`${what} must be a percentage from 0% to 100% (or 0 to 1), got "${text}"`);
  return p;
}

function durations(text: string, what: string): DurationRange {
  try {
    return range(text, what);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** The faults in the `--faults` form, for the summary. */
export function describeFaults(faults: Faults): string {
  const parts: string[] = [];
  const pct = (p: number) => `${+(p * 100).toFixed(3)}%`;
  const span = (r: DurationRange) => (r.min === r.max ? `${r.min}ms` : `${r.min}-${r.max}ms`);
  if (faults.crash > 0) parts.push(`crash=${pct(faults.crash)}`, `downtime=${span(faults.downtime)}`);
  if (faults.partition > 0) parts.push(`partition=${pct(faults.partition)}`);
  if (faults.partition > 0 && faults.cut) parts.push(`cut=${span(faults.cut)}`);
  if (faults.delay) parts.push(`delay=${span(faults.delay)}`);
  return parts.length > 0 ? parts.join(',') : 'none';
}
