import { describe, expect, it } from 'vitest';
import { InvalidQueryError, formatNodeQuery, matchNode, parseNodeQuery } from '../../src/nodes/query.js';
import type { QueryableNode } from '../../src/nodes/query.js';

const node = (name: string, over: Partial<QueryableNode> = {}): QueryableNode => ({
  name,
  status: 'up',
  tags: [],
  attrs: {},
  facts: {},
  ...over,
});

const NODES: QueryableNode[] = [
  node('web-1', { tags: ['web', 'prod'], attrs: { role: 'web', env: 'prod' }, facts: { os: 'linux', cpus: 4 } }),
  node('web-2', { tags: ['web', 'prod', 'canary'], attrs: { role: 'web', env: 'prod' }, status: 'down' }),
  node('web-3', { tags: ['web'], attrs: { role: 'web', env: 'staging' } }),
  node('db-1', {
    tags: ['db', 'prod'],
    attrs: { role: 'db', env: 'prod', 'rack/zone': 'eu-1' },
    facts: { os: 'linux', addresses: ['10.0.0.5', 'fe80::1'] },
  }),
  node('lb.edge', { tags: ['lb'], attrs: { role: 'lb', ver: 'a b', url: 'http://x:80/' }, facts: { os: 'freebsd' } }),
];

const names = (query: string): string[] => {
  const ast = parseNodeQuery(query);
  return NODES.filter((n) => matchNode(ast, n)).map((n) => n.name);
};

describe('node query: matching', () => {
  it.each([
    ['role:web', ['web-1', 'web-2', 'web-3']],
    ['role:web AND env:prod', ['web-1', 'web-2']],
    ['role:web env:prod', ['web-1', 'web-2']],
    ['role:web and env:prod', ['web-1', 'web-2']],
    ['tag:canary', ['web-2']],
    ['name:web-*', ['web-1', 'web-2', 'web-3']],
    ['name:web-?', ['web-1', 'web-2', 'web-3']],
    ['name:*-1', ['web-1', 'db-1']],
    ['name:lb.edge', ['lb.edge']],
    ['name:lb?edge', ['lb.edge']],
    ['name:lb', []],
    ['role:db OR role:lb', ['db-1', 'lb.edge']],
    ['NOT role:web', ['db-1', 'lb.edge']],
    ['not not role:db', ['db-1']],
    ['role:web AND NOT tag:canary', ['web-1', 'web-3']],
    ['(role:web OR role:db) AND env:prod', ['web-1', 'web-2', 'db-1']],
    ['role:web OR role:db AND env:prod', ['web-1', 'web-2', 'web-3', 'db-1']],
    ['role:web AND (env:staging OR tag:canary)', ['web-2', 'web-3']],
    ['((((role:db))))', ['db-1']],
    ['status:up', ['web-1', 'web-3', 'db-1', 'lb.edge']],
    ['status:down', ['web-2']],
    ['role:web AND status:up', ['web-1', 'web-3']],
    ['env:*', ['web-1', 'web-2', 'web-3', 'db-1']],
    ['NOT env:*', ['lb.edge']],
    ['env:pro*', ['web-1', 'web-2', 'db-1']],
    ['rack/zone:eu-*', ['db-1']],
    ['attr.role:db', ['db-1']],
    ['ver:"a b"', ['lb.edge']],
    ['ver:"a*"', ['lb.edge']],
    ['url:http://x:80/', ['lb.edge']],
    ['url:http://*', ['lb.edge']],
    ['fact.os:linux', ['web-1', 'db-1']],
    ['fact.cpus:4', ['web-1']],
    ['fact.addresses:10.0.0.*', ['db-1']],
    ['fact.os:*bsd', ['lb.edge']],
    ['tag:*', ['web-1', 'web-2', 'web-3', 'db-1', 'lb.edge']],
    ['tag:pr*d', ['web-1', 'web-2', 'db-1']],
    ['name:web\\-1', ['web-1']],
    ['role:WEB', []],
    ['  role:db  ', ['db-1']],
    ['*', ['web-1', 'web-2', 'web-3', 'db-1', 'lb.edge']],
    ['* AND NOT role:web', ['db-1', 'lb.edge']],
  ])('%s', (query, expected) => {
    expect(names(query)).toEqual(expected);
  });

  it('an escaped star is a literal star', () => {
    const ast = parseNodeQuery('role:a\\*');
    expect(matchNode(ast, node('x', { attrs: { role: 'a*' } }))).toBe(true);
    expect(matchNode(ast, node('x', { attrs: { role: 'ab' } }))).toBe(false);
  });

  it('regex metacharacters in values are literal', () => {
    const ast = parseNodeQuery('role:a.c+');
    expect(matchNode(ast, node('x', { attrs: { role: 'a.c+' } }))).toBe(true);
    expect(matchNode(ast, node('x', { attrs: { role: 'abcc' } }))).toBe(false);
  });

  it('an attribute named like an Object prototype member does not match by accident', () => {
    expect(names('constructor:*')).toEqual([]);
    expect(names('fact.toString:*')).toEqual([]);
  });

  it('AND binds tighter than OR; the parse shows it', () => {
    expect(formatNodeQuery(parseNodeQuery('a:1 OR b:2 AND c:3'))).toBe('(a:1 OR (b:2 AND c:3))');
    expect(formatNodeQuery(parseNodeQuery('NOT a:1 b:2'))).toBe('(NOT a:1 AND b:2)');
    expect(formatNodeQuery(parseNodeQuery('x:"a b"'))).toBe('x:"a b"');
  });
});

describe('node query: errors name their position', () => {
  it.each([
    ['', 1, /empty/],
    ['   ', 4, /empty/],
    ['role', 1, /expected field:value, got "role"/],
    ['role:web AND', 13, /got the end of the query/],
    ['role:web OR OR env:x', 13, /got OR/],
    ['AND role:web', 1, /got AND/],
    ['(role:web', 10, /expected "\)" to close the "\(" at position 1/],
    ['role:web)', 9, /unbalanced "\)"/],
    ['()', 2, /got "\)"/],
    ['role:', 6, /a value must follow "role:"/],
    [':web', 1, /a field name must come before ":"/],
    ['role:web env', 10, /expected field:value, got "env"/],
    ['status:maybe', 1, /status is up or down/],
    ['role:"web', 6, /unterminated quoted value/],
    ['role:"web"x', 11, /expected white space/],
    ['role:we"b', 8, /a quote may only start a value/],
    ['"web"', 1, /quoted value must follow a field/],
    ['fact.:x', 1, /fact\. must be followed/],
    ['role:web\\', 9, /backslash/],
    ['r@le:web', 1, /invalid field name/],
    ['NOT', 4, /got the end of the query/],
    ['role:web NOT', 13, /got the end/],
  ])('%j', (query, position, message) => {
    let caught: unknown;
    try {
      parseNodeQuery(query);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidQueryError);
    const error = caught as InvalidQueryError;
    expect(error.code).toBe('invalid_query');
    expect(error.position).toBe(position);
    expect(error.message).toMatch(message);
    expect(error.message).toContain(`at position ${position}`);
  });

  it('refuses a query nested too deep or too long, without blowing the stack', () => {
    expect(() => parseNodeQuery('('.repeat(1000) + 'a:b' + ')'.repeat(1000))).toThrow(InvalidQueryError);
    expect(() => parseNodeQuery('NOT '.repeat(500) + 'a:b')).toThrow(/nested more than/);
    expect(() => parseNodeQuery('a:b '.repeat(2000))).toThrow(/at most 4096/);
  });

  it('a long flat query parses (no recursion per term)', () => {
    const query = Array.from({ length: 300 }, (_, i) => `name:n${i}`).join(' OR ');
    const ast = parseNodeQuery(query);
    expect(matchNode(ast, node('n299'))).toBe(true);
    expect(matchNode(ast, node('n300'))).toBe(false);
  });
});
