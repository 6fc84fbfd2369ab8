import { InvalidArgumentError } from '../core/errors.js';

/**
 * Parse endpoints given as one string (a comma-separated list is fine) or a list:
 * trims, drops empties and trailing slashes, adds `http://` when no scheme is given.
 * Throws InvalidArgumentError when nothing usable remains or a URL is malformed.
 */
export function parseEndpoints(endpoints: string | readonly string[]): string[] {
  const items = (typeof endpoints === 'string' ? [endpoints] : endpoints)
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (items.length === 0)
    throw new InvalidArgumentError(
      'no endpoint given (expected a URL such as http://127.0.0.1:4100)',
      'invalid_argument',
    );
  return items.map((item) => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(item) ? item : `http://${item}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new InvalidArgumentError(`invalid endpoint ${JSON.stringify(item)}: not a URL`, 'invalid_argument');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidArgumentError(
        `invalid endpoint ${JSON.stringify(item)}: use http:// or https://`,
        'invalid_argument',
      );
    }
    return url.toString().replace(/\/+$/, '');
  });
}
