import { describe, expect, test } from 'vitest';
import { matchNode, parseNodeQuery } from '../../src/nodes/query.js';
import type { QueryableNode } from '../../src/nodes/query.js';

const node = (
  name: string,
  attrs: Record<string, string>,
  tags: string[] = [],
  up = true,
  facts = {},
): QueryableNode => ({
  name,
  attrs,
  tags,
  up,
  facts,
});
const FLEET = [
  node('web-1', { role: 'web', env: 'prod' }, ['canary'], true, { os: 'linux', cpus: 4 }),
  node('web-2', { role: 'web', env: 'prod' }),
  node('web-3', { role: 'web', env: 'staging' }, [], false),
  node('db-1', { role: 'db', env: 'prod' }, ['primary']),
  node('cache-1', { role: 'cache', env: 'prod' }, [], true, { os: 'freebsd' }),
];
const names = (query: string) =>
  FLEET.filter((n) => matchNode(parseNodeQuery(query), n))
    .map((n) => n.name)
    .join(' ');

describe('the node query language', () => {
  test.each([
    ['*', 'web-1 web-2 web-3 db-1 cache-1'],
    ['role:web', 'web-1 web-2 web-3'],
    ['role:web AND env:prod', 'web-1 web-2'],
    ['role:web and env:prod', 'web-1 web-2'],
    ['tag:canary', 'web-1'],
    ['name:web-*', 'web-1 web-2 web-3'],
    ['name:web-?', 'web-1 web-2 web-3'],
    ['role:db OR role:cache', 'db-1 cache-1'],
    ['NOT role:web', 'db-1 cache-1'],
    ['status:down', 'web-3'],
    ['NOT status:down AND (role:db OR role:cache)', 'db-1 cache-1'],
    ['role:web AND NOT tag:canary AND status:up', 'web-2'],
    ['role:db OR role:web AND env:staging', 'web-3 db-1'],
    ['(role:db OR role:web) AND env:staging', 'web-3'],
    ['os:linux', 'web-1'],
    ['cpus:4', 'web-1'],
    ['env:"prod"', 'web-1 web-2 db-1 cache-1'],
    ['nosuchattr:x', ''],
  ])('%s', (query, expected) => {
    expect(names(query)).toBe(expected);
  });

  test.each([
    ['', /the query is empty .* at position 1/],
    ['role:', /expected a value after "role:" at position 6/],
    ['role:web AND', /expected a term .* but found the end of the query at position 13/],
    ['role:web env:prod', /unexpected "env" \(join terms with AND or OR\) at position 10/],
    ['(role:web', /expected "\)" but found the end of the query at position 10/],
    ['role:web)', /unexpected "\)" at position 9/],
    ['web', /expected ":" after "web" .* at position 4/],
    ['status:sideways', /status is up or down at position 8/],
    ['role:"web', /a quote is not closed at position 6/],
    ['AND role:web', /expected a term such as role:web but found "AND" at position 1/],
  ])('refuses %j naming the position', (query, message) => {
    let error: unknown;
    try {
      parseNodeQuery(query);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'invalid_query' });
    expect((error as Error).message).toMatch(message);
  });
});
