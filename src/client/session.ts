// The session lives in core (the server's duties keep theirs the same way); the
// client exports it, since the CLI and programs hold their locks through it.
export { Session } from '../core/session.js';
export type { LeaseKeeper, SessionOptions, SessionState } from '../core/session.js';
