/** Plain-text tables of a scenario's result, for people; the JSON file is for scripts. */
import type { Measurement, Ratio, Scenario, ScenarioResult } from './scenario.js';

/** The scenario's heading, its measurements table, its ratios against their targets, and its notes. */
export function renderResult(scenario: Scenario, result: ScenarioResult): string {
  const lines = [
    `${scenario.title}`,
    result.load,
    '',
    table(
      ['system', 'op', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'server CPU', 'machine busy'],
      result.measurements.map(measurementRow),
      [false, false, true, true, true, true, true, true, true],
    ),
  ];
  if (result.ratios.length > 0) {
    lines.push(
      '',
      table(['ratio', 'value', 'target', 'verdict'], result.ratios.map(ratioRow), [false, true, true, false]),
    );
  }
  for (const note of result.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

function measurementRow(m: Measurement): string[] {
  return [
    m.system,
    m.operation,
    Math.round(m.reqPerSec).toLocaleString('en-US'),
    m.p50Ms.toFixed(2),
    m.p99Ms.toFixed(2),
    m.maxMs.toFixed(1),
    String(m.errors),
    m.serverCpuPercent === null ? '-' : `${Math.round(m.serverCpuPercent)}%`,
    m.machineBusyPercent === null ? '-' : `${Math.round(m.machineBusyPercent)}%`,
  ];
}

function ratioRow(r: Ratio): string[] {
  const target = `${r.direction === 'at-least' ? '≥' : '≤'} ${r.target.toFixed(2)}`;
  // How far from the target, as a share of the target.
  const shortBy = r.direction === 'at-least' ? (r.target - r.value) / r.target : (r.value - r.target) / r.target;
  const verdict = r.met ? 'met' : `MISSED by ${(100 * shortBy).toFixed(0)}%`;
  return [r.name, r.value.toFixed(2), target, verdict];
}

/** Columns padded to their widest cell; `right[i]` aligns column i to the right. */
function table(header: readonly string[], rows: readonly (readonly string[])[], right: readonly boolean[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const format = (row: readonly string[]) =>
    row
      .map((cell, i) => (right[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...rows.map(format)].join('\n');
}
