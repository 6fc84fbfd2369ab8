/**
 * The node query language (docs/queries.md): which nodes a job, a group or
 * `muster nodes` means.
 *
 *     role:web AND env:prod
 *     tag:canary OR name:web-*
 *     NOT status:down AND (role:db OR role:cache)
 *     *
 *
 * A term is FIELD:VALUE. `name` is the node's name, `tag` any of its tags,
 * `status` up or down; any other field is an attribute (`--attr role=web`), and
 * failing that a fact the agent reported (`os:linux`). Values may use `*` and `?`
 * as wildcards and may be quoted ("a b"). AND binds tighter than OR; NOT tighter
 * than both; parentheses group. Keywords are case-insensitive. A mistake names its
 * position (1-based): `unexpected ")" at position 14`.
 */
import { InvalidArgumentError } from '../core/errors.js';

export type NodeQuery =
  | { readonly kind: 'all' }
  | { readonly kind: 'term'; readonly field: string; readonly pattern: RegExp; readonly text: string }
  | { readonly kind: 'not'; readonly inner: NodeQuery }
  | { readonly kind: 'and' | 'or'; readonly left: NodeQuery; readonly right: NodeQuery };

/** What a query looks at on a node. */
export interface QueryableNode {
  readonly name: string;
  readonly up: boolean;
  readonly tags: readonly string[];
  readonly attrs: Readonly<Record<string, string>>;
  readonly facts?: Readonly<Record<string, unknown>>;
}

export const MAX_QUERY_LENGTH = 4096;

type Token =
  | { readonly type: 'word'; readonly text: string; readonly at: number; readonly quoted: boolean }
  | { readonly type: '(' | ')' | ':'; readonly at: number }
  | { readonly type: 'end'; readonly at: number };

function fail(query: string, message: string, at: number): never {
  throw new InvalidArgumentError(
    `invalid node query ${JSON.stringify(query)}: ${message} at position ${at + 1}`,
    'invalid_query',
  );
}

function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < query.length) {
    const c = query[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ':') {
      tokens.push({ type: c, at: i });
      i++;
    } else if (c === '"') {
      const start = i;
      let text = '';
      i++;
      while (i < query.length && query[i] !== '"') {
        if (query[i] === '\\' && i + 1 < query.length) i++;
        text += query[i];
        i++;
      }
      if (i >= query.length) fail(query, 'a quote is not closed', start);
      i++;
      tokens.push({ type: 'word', text, at: start, quoted: true });
    } else {
      const start = i;
      while (i < query.length && !/[\s():"]/.test(query[i] as string)) i++;
      tokens.push({ type: 'word', text: query.slice(start, i), at: start, quoted: false });
    }
  }
  tokens.push({ type: 'end', at: query.length });
  return tokens;
}

const KEYWORDS = new Set(['AND', 'OR', 'NOT']);
const FIELD = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

/** Parse a query; InvalidArgumentError (invalid_query, 400) naming the position of a mistake. */
export function parseNodeQuery(query: string): NodeQuery {
  if (query.length > MAX_QUERY_LENGTH) fail(query.slice(0, 40) + '…', `longer than ${MAX_QUERY_LENGTH} characters`, 0);
  const tokens = tokenize(query);
  let pos = 0;
  const peek = (): Token => tokens[pos] as Token;
  const isKeyword = (t: Token, word: string): boolean =>
    t.type === 'word' && !t.quoted && t.text.toUpperCase() === word;
  const describe = (t: Token): string =>
    t.type === 'end' ? 'the end of the query' : t.type === 'word' ? `"${t.text}"` : `"${t.type}"`;

  const parseOr = (): NodeQuery => {
    let left = parseAnd();
    while (isKeyword(peek(), 'OR')) {
      pos++;
      left = { kind: 'or', left, right: parseAnd() };
    }
    return left;
  };
  const parseAnd = (): NodeQuery => {
    let left = parseNot();
    while (isKeyword(peek(), 'AND')) {
      pos++;
      left = { kind: 'and', left, right: parseNot() };
    }
    return left;
  };
  const parseNot = (): NodeQuery => {
    if (isKeyword(peek(), 'NOT')) {
      pos++;
      return { kind: 'not', inner: parseNot() };
    }
    return parsePrimary();
  };
  const parsePrimary = (): NodeQuery => {
    const t = peek();
    if (t.type === '(') {
      pos++;
      const inner = parseOr();
      const close = peek();
      if (close.type !== ')') fail(query, `expected ")" but found ${describe(close)}`, close.at);
      pos++;
      return inner;
    }
    if (t.type !== 'word' || (!t.quoted && KEYWORDS.has(t.text.toUpperCase()))) {
      fail(query, `expected a term such as role:web but found ${describe(t)}`, t.at);
    }
    pos++;
    if (!t.quoted && t.text === '*' && peek().type !== ':') return { kind: 'all' };
    const colon = peek();
    if (colon.type !== ':') fail(query, `expected ":" after "${t.text}" (terms are FIELD:VALUE)`, colon.at);
    if (!FIELD.test(t.text)) fail(query, `"${t.text}" is not a field name`, t.at);
    pos++;
    const value = peek();
    if (value.type !== 'word' || value.text === '') fail(query, `expected a value after "${t.text}:"`, value.at);
    pos++;
    const field =
      t.text.toLowerCase() === 'name' || t.text.toLowerCase() === 'tag' || t.text.toLowerCase() === 'status'
        ? t.text.toLowerCase()
        : t.text;
    if (field === 'status' && !['up', 'down'].includes(value.text.toLowerCase())) {
      fail(query, 'status is up or down', value.at);
    }
    return { kind: 'term', field, pattern: globToRegExp(value.text), text: value.text };
  };

  if (peek().type === 'end') fail(query, 'the query is empty (use * for every node)', 0);
  const tree = parseOr();
  const rest = peek();
  if (rest.type !== 'end') {
    fail(query, `unexpected ${describe(rest)}${rest.type === 'word' ? ' (join terms with AND or OR)' : ''}`, rest.at);
  }
  return tree;
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Does the node match? */
export function matchNode(query: NodeQuery, node: QueryableNode): boolean {
  switch (query.kind) {
    case 'all':
      return true;
    case 'not':
      return !matchNode(query.inner, node);
    case 'and':
      return matchNode(query.left, node) && matchNode(query.right, node);
    case 'or':
      return matchNode(query.left, node) || matchNode(query.right, node);
    case 'term': {
      const { field, pattern } = query;
      if (field === 'name') return pattern.test(node.name);
      if (field === 'tag') return node.tags.some((t) => pattern.test(t));
      if (field === 'status') return pattern.test(node.up ? 'up' : 'down');
      const attr = node.attrs[field];
      if (attr !== undefined) return pattern.test(attr);
      const fact = node.facts?.[field];
      if (typeof fact === 'string' || typeof fact === 'number' || typeof fact === 'boolean')
        return pattern.test(String(fact));
      if (Array.isArray(fact))
        return fact.some((f) => (typeof f === 'string' || typeof f === 'number') && pattern.test(String(f)));
      return false;
    }
  }
}

/** A matcher for a query text (parsed once). */
export function nodeMatcher(query: string): (node: QueryableNode) => boolean {
  const parsed = parseNodeQuery(query);
  return (node) => matchNode(parsed, node);
}
