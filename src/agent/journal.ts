/**
 * The agent's journal (in its state folder): reports not yet acknowledged by
 * the server, so that an agent restarted (or a server that went away) loses
 * none. Each report is one JSON line appended before it is sent; an
 * acknowledgement is a line too; the file is emptied whenever nothing is
 * pending. The report's `seq` lets the server drop one it already has.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobReport } from '../api/agent-protocol.js';

export interface PendingReport {
  readonly jobId: string;
  readonly report: JobReport;
}

type Line = { r: PendingReport } | { a: { jobId: string; seq: number } };

export class Journal {
  private readonly file: string;
  private readonly pendingReports: PendingReport[] = [];
  private readonly nextSeq = new Map<string, number>();

  constructor(stateDir: string) {
    this.file = join(stateDir, 'journal.jsonl');
    if (!existsSync(this.file)) return;
    const acked = new Set<string>();
    const reports: PendingReport[] = [];
    for (const text of readFileSync(this.file, 'utf8').split('\n')) {
      if (text.trim() === '') continue;
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        continue; // a line cut short by a crash: it was never sent
      }
      if ('r' in line) reports.push(line.r);
      else acked.add(`${line.a.jobId}\u0000${line.a.seq}`);
    }
    for (const p of reports) {
      this.nextSeq.set(p.jobId, Math.max(this.nextSeq.get(p.jobId) ?? 0, p.report.seq + 1));
      if (!acked.has(`${p.jobId}\u0000${p.report.seq}`)) this.pendingReports.push(p);
    }
    this.rewrite();
  }

  /** Reports waiting for the server, oldest first. */
  get pending(): readonly PendingReport[] {
    return this.pendingReports;
  }

  /** The job ids with a report in the journal (handled already: not to be run again). */
  jobs(): string[] {
    return [...this.nextSeq.keys()];
  }

  /** Record a report for `jobId` (its seq assigned here) and return it. */
  add(jobId: string, report: DistributiveOmit<JobReport, 'seq'>): PendingReport {
    const seq = this.nextSeq.get(jobId) ?? 0;
    this.nextSeq.set(jobId, seq + 1);
    const entry = { jobId, report: { ...report, seq } as JobReport };
    appendFileSync(this.file, JSON.stringify({ r: entry }) + '\n', { mode: 0o600 });
    this.pendingReports.push(entry);
    return entry;
  }

  /** The server has the oldest pending report. */
  ack(entry: PendingReport): void {
    const index = this.pendingReports.indexOf(entry);
    if (index >= 0) this.pendingReports.splice(index, 1);
    if (this.pendingReports.length === 0) this.rewrite();
    else appendFileSync(this.file, JSON.stringify({ a: { jobId: entry.jobId, seq: entry.report.seq } }) + '\n');
  }

  /** Forget a finished job's seq counter once nothing of it is pending. */
  forget(jobId: string): void {
    if (!this.pendingReports.some((p) => p.jobId === jobId)) this.nextSeq.delete(jobId);
  }

  private rewrite(): void {
    writeFileSync(this.file, this.pendingReports.map((r) => JSON.stringify({ r }) + '\n').join(''), { mode: 0o600 });
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
