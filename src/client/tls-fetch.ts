/**
 * HTTPS with a CA of the caller's own (a server whose certificate a private CA
 * signed) and, optionally, a client certificate. Node's global fetch takes
 * neither, so these requests go through undici's fetch with an Agent that does;
 * undici is loaded only when TLS options are given.
 */
import type { FetchFunction } from './http-transport.js';

export interface ClientTls {
  /** CA certificate(s) to verify the server with (PEM). */
  readonly ca?: string;
  /** Client certificate (PEM), for a server that requires one; with `key`. */
  readonly cert?: string;
  readonly key?: string;
}

export function tlsFetch(tls: ClientTls): FetchFunction {
  let ready: Promise<FetchFunction> | null = null;
  const load = async (): Promise<FetchFunction> => {
    const undici = await import('undici');
    const dispatcher = new undici.Agent({
      connect: {
        ...(tls.ca ? { ca: tls.ca } : {}),
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
      },
    });
    return (input, init) =>
      undici.fetch(input, {
        ...(init as Parameters<typeof undici.fetch>[1]),
        dispatcher,
      }) as unknown as Promise<Response>;
  };
  return async (input, init) => {
    ready ??= load();
    return (await ready)(input, init);
  };
}
