export { MusterClient } from './muster-client.js';
export type {
  MusterClientOptions,
  GetResult,
  ClientPutOptions,
  ClientListOptions,
  ClientDeleteOptions,
  ChangeResult,
  CallOptions,
} from './muster-client.js';
export { Session } from './session.js';
export type { SessionOptions, SessionState } from './session.js';
export type { ClientWatchOptions, WatchStatus } from './watch-stream.js';
export type {
  ClientValue,
  ClientCompare,
  ClientTxnOp,
  ClientTxnRequest,
  ClientTxnOpResult,
  ClientTxnResult,
} from './txn-encoding.js';
export { errorFromWire } from './error-from-wire.js';
export {
  MusterError,
  RevisionConflictError,
  KeyNotFoundError,
  LeaseNotFoundError,
  CompactedError,
  FutureRevisionError,
  InvalidArgumentError,
  InvalidKeyError,
  ValueTooLargeError,
  TimeoutError,
  BackendUnavailableError,
  BackendClosedError,
  NotHolderError,
  LimitMismatchError,
  CancelledError,
  UnauthenticatedError,
  ForbiddenError,
  TokenNotFoundError,
  LimitExceededError,
} from '../core/errors.js';
export type { KeyValue, LeaseId, LeaseInfo, RangeResult, WatchEvent, CompareOp } from '../core/backend.js';
export { parseEndpoints } from './endpoints.js';
export type {
  Held,
  LockHandle,
  LockState,
  SemaphoreHandle,
  SemaphoreState,
  Leadership,
  LeaderInfo,
  BarrierState,
  OnceResult,
  OnceTurn,
  OnceState,
  WaitCondition,
  WaitOutcome,
  BlockingOptions,
  AcquireLockOptions,
} from './coordination-types.js';
export type {
  JobEvent,
  JobOutput,
  JobRecord,
  JobRequest,
  JobView,
  NodeJobRecord,
  OutputChunk,
  TriggerRecord,
  TriggerRequest,
} from './job-types.js';
export type { HookDelivery, HookRequest, HookView } from './hook-types.js';
export type { ActualState, Desired, DesiredSpec, Group, GroupStatus, PlanPreview, PlanRecord } from './plan-types.js';
export type { NodeInfo, NodeRegistration, NodeSummary } from '../api/agent-protocol.js';
