import type { JobView, NodeJobRecord } from '../../client/job-types.js';
import { formatTable } from '../format.js';

/** done/running/failed of N, as a bar for a terminal. */
export function progressLine(counts: Readonly<Record<string, number>>, total: number, width = 30): string {
  const done = counts.succeeded ?? 0;
  const failed = (counts.failed ?? 0) + (counts.timed_out ?? 0) + (counts.rejected ?? 0) + (counts.unreachable ?? 0);
  const aborted = counts.aborted ?? 0;
  const running = counts.running ?? 0;
  const cells = (n: number) => (total === 0 ? 0 : Math.round((n / total) * width));
  const bar = ('#'.repeat(cells(done)) + 'x'.repeat(cells(failed + aborted)) + '>'.repeat(cells(running)))
    .slice(0, width)
    .padEnd(width, '.');
  return `[${bar}] ${done} done, ${running} running, ${failed} failed${aborted ? `, ${aborted} aborted` : ''} of ${total}`;
}

/** What a node's part came to, in a few words. */
export function nodeOutcome(n: NodeJobRecord): string {
  const parts: string[] = [n.state];
  if (n.exitCode !== undefined && n.exitCode !== null && n.state !== 'succeeded') parts.push(`exit ${n.exitCode}`);
  if (n.signal) parts.push(n.signal);
  if (n.reason) parts.push(n.reason);
  if (n.truncated) parts.push('(output truncated)');
  return parts.join(', ');
}

export function jobSummary(job: JobView): string {
  const counts = Object.entries(job.counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
  return `job ${job.id} ${job.state}${job.reason ? ` (${job.reason})` : ''}: ${counts || 'no nodes'}`;
}

export function jobDetails(job: JobView): string {
  const lines = [
    `job       ${job.id}`,
    `state     ${job.state}${job.reason ? ` (${job.reason})` : ''}`,
    `command   ${[job.command, ...job.args].join(' ')}`,
    `query     ${job.query}`,
    `nodes     ${job.nodes.length} (of ${job.matched} matched)`,
    `quorum    ${job.quorum.percent !== undefined ? `${job.quorum.percent}%` : job.quorum.count}, concurrency ${job.concurrency || 'all'}, failure threshold ${job.failureThreshold.percent !== undefined ? `${job.failureThreshold.percent}%` : job.failureThreshold.count}, timeout ${Math.round(job.timeoutMs / 1000)}s`,
    `created   ${job.createdAt} by ${job.createdBy}`,
  ];
  if (job.startedAt) lines.push(`started   ${job.startedAt}`);
  if (job.finishedAt) lines.push(`finished  ${job.finishedAt}`);
  if (job.nodeStates && job.nodeStates.length > 0) {
    lines.push('');
    lines.push(
      formatTable([
        ['NODE', 'STATE', 'STARTED', 'FINISHED'],
        ...job.nodeStates.map((n) => [n.node, nodeOutcome(n), n.startedAt ?? '-', n.finishedAt ?? '-']),
      ]),
    );
  }
  return lines.join('\n');
}
