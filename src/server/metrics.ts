import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Backend } from '../core/backend.js';
import { access } from './access.js';

type Label = 'route' | 'method' | 'status';

/** Prometheus metrics of one app, in a registry of its own (several apps may share a process). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly openWatches: Gauge;
  readonly blockedRequests: Gauge;
  private readonly requests: Counter<Label>;
  private readonly duration: Histogram<Label>;
  /** One child per (method, route, status), so the hot path does no label lookup. */
  private readonly children = new Map<string, { count: Counter.Internal; duration: Histogram.Internal<Label> }>();

  constructor(backend: Backend) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'muster_http_requests_total',
      help: 'HTTP requests answered, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'muster_http_request_duration_seconds',
      help: 'Time to answer an HTTP request (blocking calls included), by route, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.openWatches = new Gauge({ name: 'muster_open_watches', help: 'Watch streams open now', registers });
    this.blockedRequests = new Gauge({
      name: 'muster_blocked_requests',
      help: 'Blocking calls (lock, semaphore, campaign, barrier, once, wait) waiting now',
      registers,
    });
    new Gauge({
      name: 'muster_revision',
      help: 'The store revision',
      registers,
      async collect() {
        this.set(await backend.revision().catch(() => 0));
      },
    });
    new Gauge({
      name: 'muster_backend_info',
      help: 'The store this server runs on',
      labelNames: ['backend'],
      registers,
    }).set({ backend: backend.kind }, 1);
    collectDefaultMetrics({ register: this.registry, prefix: 'muster_' });
  }

  /** Count and time every request, and serve `GET /metrics`. */
  install(app: FastifyInstance): void {
    // A callback hook, not an async one: no promise per request on the hot path.
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const id = `${request.method} ${reply.statusCode} ${route}`;
      let child = this.children.get(id);
      if (!child) {
        const labels = { route, method: request.method, status: String(reply.statusCode) };
        child = { count: this.requests.labels(labels), duration: this.duration.labels(labels) };
        this.children.set(id, child);
      }
      child.count.inc();
      child.duration.observe(reply.elapsedTime / 1000);
      done();
    });
    app.get(
      '/metrics',
      {
        schema: { summary: 'Prometheus metrics', hide: true },
        config: { access: access.keys(() => [{ key: '/', prefix: true, mode: 'read', filtered: true }]) },
      },
      async (_request, reply) => {
        return reply.type(this.registry.contentType).send(await this.registry.metrics());
      },
    );
  }
}
