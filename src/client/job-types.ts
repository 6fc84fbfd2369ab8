import type { JobRecord, JobRequest, JobView, NodeJobRecord, OutputChunk } from '../jobs/job-model.js';
import type { TriggerRecord, TriggerRequest } from '../jobs/trigger-model.js';

export type { JobRecord, JobRequest, JobView, NodeJobRecord, OutputChunk, TriggerRecord, TriggerRequest };

/** One event of `jobEvents`: the job's record, a node's state, a chunk of output, or the end. */
export type JobEvent =
  | { readonly type: 'job'; readonly job: JobRecord; readonly revision?: number }
  | { readonly type: 'node'; readonly node: NodeJobRecord; readonly revision?: number }
  | { readonly type: 'output'; readonly chunk: OutputChunk; readonly revision?: number }
  | { readonly type: 'end' };

/** A node's output as `jobOutput` returns it. */
export interface JobOutput {
  readonly node: string;
  /** Older output was dropped to keep within the server's limit. */
  readonly truncated: boolean;
  readonly chunks: OutputChunk[];
}
