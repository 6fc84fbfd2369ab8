/**
 * The URL path of a key or prefix under a route: `/v1/kv` + `/config/db/host`
 * gives `/v1/kv/config/db/host`, each segment percent-encoded so that `?`, `#`,
 * `%` and spaces in a key survive the trip.
 */
export function keyPath(route: string, key: string): string {
  const encoded = key
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
  return route + (encoded.startsWith('/') ? encoded : `/${encoded}`);
}

/** A query string from the defined entries of `params` (with its leading `?`, or ''). */
export function queryString(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) search.set(name, String(value));
  }
  const text = search.toString();
  return text.length > 0 ? `?${text}` : '';
}
