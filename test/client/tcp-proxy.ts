import type { AddressInfo, Socket } from 'node:net';
import { createConnection, createServer } from 'node:net';

/**
 * A TCP proxy between a client and a server, to cut connections on purpose (as
 * etcd3's tests do): `cutAll()` drops every connection, `freezeAll()` silences
 * them without closing them, `cutAfter(marker)` drops
 * the next downstream stream right after `marker` has been forwarded (so the
 * client sees half of a response), and `target` can be changed to point at a
 * restarted server.
 */
export class TcpProxy {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private readonly frozen = new WeakSet<Socket>();
  private cutMarker: string | null = null;
  private onCut: (() => void) | null = null;

  private constructor(
    private readonly server: ReturnType<typeof createServer>,
    public targetPort: number,
  ) {}

  /** Start a proxy on 127.0.0.1 (a free port) forwarding to 127.0.0.1:targetPort. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Drop every open connection, as a network failure would. */
  cutAll(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Stop forwarding on the open connections without closing them, as a dead peer or a cut cable would. */
  freezeAll(): void {
    for (const pair of this.pairs) this.frozen.add(pair.client);
  }

  /** Resolves once a downstream chunk containing `marker` was forwarded up to its end and the connection cut. */
  cutAfter(marker: string): Promise<void> {
    this.cutMarker = marker;
    return new Promise((resolve) => (this.onCut = resolve));
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
    const pair = { client, upstream };
    this.pairs.add(pair);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (!this.frozen.has(client)) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (this.frozen.has(client)) return;
      const marker = this.cutMarker;
      const at = marker === null ? -1 : chunk.indexOf(marker);
      if (marker === null || at < 0) {
        client.write(chunk);
        return;
      }
      this.cutMarker = null;
      client.write(chunk.subarray(0, at + marker.length), () => {
        drop();
        this.onCut?.();
        this.onCut = null;
      });
    });
  }
}
