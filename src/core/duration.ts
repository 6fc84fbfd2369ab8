import { InvalidArgumentError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parse a duration such as `500ms`, `15s`, `10m`, `1h`, `30d` or `1m30s`; a bare number
 * means seconds. Returns milliseconds. Throws InvalidArgumentError (code
 * `invalid_duration`) naming `what` on anything else.
 */
export function parseDuration(text: string | number, what = 'duration'): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw bad(String(text), what);
    return text * 1000;
  }
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) throw bad(text, what);
  let total = 0;
  for (const part of parts) total += Number(part[1]) * (UNITS[part[2] ?? 's'] ?? 1000);
  return Math.round(total);
}

function bad(text: string, what: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `invalid ${what} ${JSON.stringify(text)}: use a number of seconds or a duration such as 500ms, 15s, 10m, 1h, 7d`,
    'invalid_duration',
  );
}

/**
 * parseDuration, for a setting with bounds: above 0 when `aboveZero`, and at most
 * `maxMs` (named `max` in the message). Throws InvalidArgumentError
 * (`invalid_duration`) such as "timeout must be more than 0 and at most 10m".
 */
export function parseDurationWithin(
  text: string | number,
  what: string,
  bounds: { readonly aboveZero: boolean; readonly maxMs: number; readonly max: string },
): number {
  const ms = parseDuration(text, what);
  if ((bounds.aboveZero && ms <= 0) || ms > bounds.maxMs) {
    throw new InvalidArgumentError(
      `${what} must be ${bounds.aboveZero ? 'more than 0 and ' : ''}at most ${bounds.max}, got ${JSON.stringify(text)}`,
      'invalid_duration',
    );
  }
  return ms;
}
