import { describeFaults } from './faults.js';
import { seconds } from './history.js';
import type { SimulationResult } from './simulation.js';

/** Every event, one a line: virtual time since the start, node, what happened. */
export function formatTimeline(result: SimulationResult): string {
  const width = Math.max(4, ...result.timeline.map((e) => e.node.length));
  return result.timeline.map((e) => `${seconds(e.at).padStart(10)}  ${e.node.padEnd(width)}  ${e.what}\n`).join('');
}

/**
 * The summary and the violations. Everything but the `wall time` line is the
 * same for the same scenario, options and seed.
 */
export function formatSummary(result: SimulationResult): string {
  const s = result.summary;
  const release = s.release;
  const lines = [
    `scenario         ${s.scenario}: ${s.nodes} nodes, seed ${s.seed}, faults ${describeFaults(s.faults)}`,
    `virtual time     ${seconds(s.virtualMs)}${s.outcome === 'done' ? '' : ` (${s.outcome === 'limit' ? 'stopped at the limit' : 'stuck'})`}`,
    `wall time        ${seconds(s.wallMs)}`,
    release
      ? `settled          ${s.finishedNodes} of ${s.nodes} nodes (${s.downAtEnd} down at the end)`
      : `finished         ${s.finishedNodes} of ${s.nodes} nodes`,
    `crashes          ${s.crashes}`,
    `partitions       ${s.partitions}`,
    ...(release
      ? [
          `plan             ${s.plan ? `${s.plan.name} (${s.plan.id}): ${s.plan.state}${s.plan.reason ? `: ${s.plan.reason}` : ''}` : 'not applied'}`,
          `job assignments  ${s.jobAssignments}`,
        ]
      : [
          `leaders elected  ${s.leadersElected}`,
          `locks acquired   ${s.lockAcquisitions}`,
          `once runs        ${s.onceRuns}`,
          `barrier releases ${s.barrierReleases}`,
        ]),
    `requests         ${s.requests}`,
    ...(release ? [] : [`longest wait     ${seconds(s.maxWaitMs)}`]),
  ];
  if (result.violations.length === 0) {
    lines.push('invariants       all held');
  } else {
    lines.push(`violations       ${result.violations.length}`);
    for (const v of result.violations.slice(0, 50))
      lines.push(`  ${seconds(v.at).padStart(10)}  ${v.invariant}: ${v.message}`);
    if (result.violations.length > 50) lines.push(`  ... and ${result.violations.length - 50} more`);
  }
  return lines.map((line) => line + '\n').join('');
}
