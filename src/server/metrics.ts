import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Backend } from '../core/backend.js';

/** Prometheus metrics of one app, in a registry of its own (several apps may share a process). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly openWatches: Gauge;
  private readonly requests: Counter;
  private readonly duration: Histogram;

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
      help: 'Time to answer an HTTP request (blocking calls included), by route and method',
      labelNames: ['route', 'method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.openWatches = new Gauge({ name: 'muster_open_watches', help: 'Watch streams open now', registers });
    new Gauge({
      name: 'muster_revision',
      help: 'The store revision',
      registers,
      async collect() {
        this.set(await backend.revision().catch(() => 0));
      },
    });
    new Gauge({ name: 'muster_backend_info', help: 'The store this server runs on', labelNames: ['backend'], registers }).set(
      { backend: backend.kind },
      1,
    );
    collectDefaultMetrics({ register: this.registry, prefix: 'muster_' });
  }

  /** Count and time every request, and serve `GET /metrics`. */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      this.requests.inc({ route, method: request.method, status: reply.statusCode });
      this.duration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    });
    app.get('/metrics', { schema: { summary: 'Prometheus metrics', hide: true } }, async (_request, reply) => {
      return reply.type(this.registry.contentType).send(await this.registry.metrics());
    });
  }
}
