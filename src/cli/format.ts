import type { KeyValue, WatchEvent } from '../core/backend.js';
import { toWireKeyValue } from '../api/values.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A value for a person: its text when it is printable UTF-8, else a size. At most `max` characters. */
export function displayValue(value: Uint8Array, max = 40): string {
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    return `<${value.length} bytes, binary>`;
  }
  const printable = text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : '?'));
  return printable.length > max ? printable.slice(0, max - 1) + '…' : printable;
}

/** Rows as aligned columns, the first row a header. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One event as one line for a person. */
export function formatEvent(event: WatchEvent): string {
  if (event.type === 'delete') return `DELETE ${event.kv.key} (revision ${event.revision})`;
  const lease = event.kv.lease ? `, lease ${event.kv.lease}` : '';
  return `PUT    ${event.kv.key} = ${displayValue(event.kv.value, 80)} (revision ${event.revision}, version ${event.kv.version}${lease})`;
}

/** One event as the API's JSON shape (`WireWatchEvent`). */
export function eventJson(event: WatchEvent): object {
  return { type: event.type, revision: event.revision, ...toWireKeyValue(event.kv) };
}

/** A key as JSON, with the store revision it was read at. */
export function keyValueJson(kv: KeyValue, revision: number): object {
  return { ...toWireKeyValue(kv), revision };
}
