import type { Statements } from './statements.js';

/**
 * Drops the history below `below` that no read at or after it needs: for each key
 * only its latest put before `below` stays. Rows superseded before `from` (the
 * previous compact revision) went in earlier calls, so the cost follows the step
 * asked for, not the size of the history (see the `compactable` statement).
 */
export function compactHistory(stmt: Statements, from: number, below: number): void {
  const rows = stmt.compactable.all({ from, below }) as { revision: number; sub: number }[];
  for (const row of rows) stmt.deleteHistoryRow.run(row.revision, row.sub);
}
