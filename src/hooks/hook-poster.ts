/** One POST of a webhook body, with a timeout on the injected clock; never throws. */
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { Clock } from '../core/clock.js';

export interface PostOutcome {
  /** The HTTP status, or 0 when there was no answer. */
  readonly status: number;
  /** Why it failed (null on a 2xx). */
  readonly error: string | null;
}

/** Keeps connections to one endpoint open between deliveries (one per hook). */
export class HookPoster {
  private readonly agent: HttpAgent;
  private readonly target: URL;

  constructor(
    url: string,
    private readonly clock: Clock,
    private readonly timeoutMs: number,
  ) {
    this.target = new URL(url);
    this.agent =
      this.target.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, maxSockets: 1 })
        : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  }

  post(body: string, headers: Record<string, string>, signal: AbortSignal): Promise<PostOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: PostOutcome): void => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const send = this.target.protocol === 'https:' ? httpsRequest : httpRequest;
      const payload = Buffer.from(body, 'utf8');
      const req = send(this.target, {
        method: 'POST',
        agent: this.agent,
        headers: { ...headers, 'content-length': String(payload.length), 'user-agent': 'muster-hooks/1' },
      });
      const timer = this.clock.setTimeout(() => {
        req.destroy();
        finish({ status: 0, error: `timed out after ${this.timeoutMs} ms` });
      }, this.timeoutMs);
      const onAbort = (): void => {
        req.destroy();
        finish({ status: 0, error: 'cancelled' });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (error) => finish({ status: 0, error: error.message }));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        res.on('error', (error) => finish({ status, error: error.message }));
        res.on('end', () =>
          finish({ status, error: status >= 200 && status < 300 ? null : `answered HTTP ${status}` }),
        );
        res.resume();
      });
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
