/**
 * The node query language (docs/queries.md): which nodes a listing or a job
 * targets. `role:web AND env:prod`, `tag:canary`, `name:web-*`, `OR`, `NOT`,
 * parentheses; globs (`*`, `?`) in values. `parseNodeQuery` turns text into an
 * AST or throws InvalidQueryError (`invalid_query`, 400) naming the position of
 * the error; `matchNode` decides whether one node matches.
 *
 * Grammar (keywords are case-insensitive; juxtaposition is AND):
 *
 *     query   := or
 *     or      := and ( "OR" and )*
 *     and     := unary ( "AND"? unary )*
 *     unary   := "NOT" unary | "(" or ")" | term
 *     term    := FIELD ":" VALUE | "*"          ("*" alone: every node)
 *
 * FIELD: `tag`, `name`, `status` (up|down), `fact.<key>`, or any other word: an
 * attribute key. VALUE: a word up to white space or a parenthesis, or a quoted
 * "string" (backslash escapes); `*` and `?` are globs, `\*` a literal star.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { NodeInfo } from '../api/agent-protocol.js';

export type NodeQuery =
  | { readonly type: 'and'; readonly left: NodeQuery; readonly right: NodeQuery }
  | { readonly type: 'or'; readonly left: NodeQuery; readonly right: NodeQuery }
  | { readonly type: 'not'; readonly operand: NodeQuery }
  | {
      readonly type: 'term';
      /** `tag`, `name`, `status`, `attr` (an attribute) or `fact`. */
      readonly field: 'tag' | 'name' | 'status' | 'attr' | 'fact';
      /** The attribute or fact key (for `attr` and `fact`). */
      readonly key?: string;
      /** The value as written (after unquoting), globs and all. */
      readonly value: string;
      /** The value as a regular expression (anchored). */
      readonly pattern: RegExp;
    };

/** A query that does not parse. `position` is 1-based, counted in characters. */
export class InvalidQueryError extends InvalidArgumentError {
  constructor(
    message: string,
    readonly position: number,
    readonly query: string,
  ) {
    super(`invalid query at position ${position}: ${message}`, 'invalid_query');
  }
}

/** The longest query accepted, in characters. */
export const MAX_QUERY_LENGTH = 4096;
const MAX_DEPTH = 64;

type Token =
  | { readonly kind: 'lparen' | 'rparen' | 'and' | 'or' | 'not' | 'end'; readonly at: number }
  | {
      readonly kind: 'term';
      readonly at: number;
      readonly field: string;
      /** The value, with `literal[i]` true where a character was escaped or quoted-literal. */
      readonly value: string;
      readonly literal: readonly boolean[];
    };

const FIELD = /^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$/;
const KEYWORDS: Record<string, 'and' | 'or' | 'not'> = { and: 'and', or: 'or', not: 'not' };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (message: string, at: number): never => {
    throw new InvalidQueryError(message, at + 1, text);
  };
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')') {
      tokens.push({ kind: c === '(' ? 'lparen' : 'rparen', at: i });
      i++;
      continue;
    }
    if (c === '"') fail('a quoted value must follow a field and ":" (e.g. attr:"a b")', i);
    // A word: up to white space, a parenthesis, or the first ':'.
    const start = i;
    while (i < text.length && !/[\s():"]/.test(text[i]!)) i++;
    const word = text.slice(start, i);
    if (text[i] !== ':') {
      const keyword = KEYWORDS[word.toLowerCase()];
      if (keyword && word.length > 0) {
        tokens.push({ kind: keyword, at: start });
        continue;
      }
      if (word === '*') {
        // Every node: `*` alone is `name:*`.
        tokens.push({ kind: 'term', at: start, field: 'name', value: '*', literal: [false] });
        continue;
      }
      if (text[i] === '"') fail(`unexpected quote after ${JSON.stringify(word)}`, i);
      fail(`expected field:value, got ${JSON.stringify(word)} (e.g. role:web, tag:canary, name:web-*)`, start);
    }
    if (word.length === 0) fail('a field name must come before ":"', start);
    if (!FIELD.test(word)) fail(`invalid field name ${JSON.stringify(word)}`, start);
    i++; // the ':'
    let value = '';
    const literal: boolean[] = [];
    if (text[i] === '"') {
      const open = i;
      i++;
      let closed = false;
      while (i < text.length) {
        const ch = text[i]!;
        if (ch === '\\') {
          if (i + 1 >= text.length) break;
          value += text[i + 1]!;
          literal.push(true);
          i += 2;
          continue;
        }
        if (ch === '"') {
          closed = true;
          i++;
          break;
        }
        value += ch;
        literal.push(false);
        i++;
      }
      if (!closed) fail('unterminated quoted value', open);
      if (i < text.length && !/[\s()]/.test(text[i]!)) fail('expected white space or ")" after a quoted value', i);
    } else {
      const valueStart = i;
      while (i < text.length && !/[\s()"]/.test(text[i]!)) {
        if (text[i] === '\\') {
          if (i + 1 >= text.length) fail('a backslash must escape a character', i);
          value += text[i + 1]!;
          literal.push(true);
          i += 2;
          continue;
        }
        value += text[i]!;
        literal.push(false);
        i++;
      }
      if (text[i] === '"') fail('a quote may only start a value (e.g. attr:"a b")', i);
      if (value.length === 0) fail(`a value must follow ${JSON.stringify(word + ':')} (use * for any)`, valueStart);
    }
    tokens.push({ kind: 'term', at: start, field: word, value, literal });
  }
  tokens.push({ kind: 'end', at: text.length });
  return tokens;
}

function globPattern(value: string, literal: readonly boolean[]): RegExp {
  let source = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (!literal[i] && c === '*') source += '[\\s\\S]*';
    else if (!literal[i] && c === '?') source += '[\\s\\S]';
    else source += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'u');
}

/** Parse a node query; throws InvalidQueryError (code `invalid_query`) with the position of the error. */
export function parseNodeQuery(text: string): NodeQuery {
  if (text.length > MAX_QUERY_LENGTH) {
    throw new InvalidQueryError(`a query is at most ${MAX_QUERY_LENGTH} characters`, MAX_QUERY_LENGTH + 1, text);
  }
  const tokens = tokenize(text);
  let index = 0;
  const peek = (): Token => tokens[index]!;
  const fail = (message: string, token: Token): never => {
    throw new InvalidQueryError(message, token.at + 1, text);
  };
  const describe = (token: Token): string =>
    token.kind === 'end'
      ? 'the end of the query'
      : token.kind === 'term'
        ? JSON.stringify(`${token.field}:${token.value}`)
        : token.kind === 'lparen'
          ? '"("'
          : token.kind === 'rparen'
            ? '")"'
            : token.kind.toUpperCase();

  const parseOr = (depth: number): NodeQuery => {
    let left = parseAnd(depth);
    while (peek().kind === 'or') {
      index++;
      left = { type: 'or', left, right: parseAnd(depth) };
    }
    return left;
  };
  const parseAnd = (depth: number): NodeQuery => {
    let left = parseUnary(depth);
    for (;;) {
      const next = peek();
      if (next.kind === 'and') {
        index++;
        left = { type: 'and', left, right: parseUnary(depth) };
      } else if (next.kind === 'term' || next.kind === 'not' || next.kind === 'lparen') {
        left = { type: 'and', left, right: parseUnary(depth) };
      } else return left;
    }
  };
  const parseUnary = (depth: number): NodeQuery => {
    const token = peek();
    if (depth > MAX_DEPTH) fail(`nested more than ${MAX_DEPTH} deep`, token);
    if (token.kind === 'not') {
      index++;
      return { type: 'not', operand: parseUnary(depth + 1) };
    }
    if (token.kind === 'lparen') {
      index++;
      const inner = parseOr(depth + 1);
      const close = peek();
      if (close.kind !== 'rparen') fail(`expected ")" to close the "(" at position ${token.at + 1}`, close);
      index++;
      return inner;
    }
    if (token.kind === 'term') {
      index++;
      return term(token);
    }
    return fail(
      token.kind === 'end' && index === 0
        ? 'the query is empty (e.g. role:web AND env:prod)'
        : `expected field:value, NOT or "(", got ${describe(token)}`,
      token,
    );
  };
  const term = (token: Extract<Token, { kind: 'term' }>): NodeQuery => {
    const pattern = globPattern(token.value, token.literal);
    const { field, value } = token;
    const lower = field.toLowerCase();
    if (lower === 'tag' || lower === 'name') return { type: 'term', field: lower, value, pattern };
    if (lower === 'status') {
      if (value !== 'up' && value !== 'down') fail(`status is up or down, not ${JSON.stringify(value)}`, token);
      return { type: 'term', field: 'status', value, pattern };
    }
    if (lower.startsWith('fact.')) {
      const key = field.slice(5);
      if (key.length === 0) fail('fact. must be followed by a fact name (e.g. fact.os:linux)', token);
      return { type: 'term', field: 'fact', key, value, pattern };
    }
    if (lower.startsWith('attr.') && field.length > 5) {
      return { type: 'term', field: 'attr', key: field.slice(5), value, pattern };
    }
    return { type: 'term', field: 'attr', key: field, value, pattern };
  };

  const ast = parseOr(0);
  const rest = peek();
  if (rest.kind !== 'end') {
    fail(rest.kind === 'rparen' ? 'unbalanced ")"' : `unexpected ${describe(rest)}`, rest);
  }
  return ast;
}

/** The subset of a node a query looks at. */
export type QueryableNode = Pick<NodeInfo, 'name' | 'status' | 'tags' | 'attrs' | 'facts'>;

function factText(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap(factText);
  if (typeof value === 'object') return [JSON.stringify(value)];
  return [String(value as string | number | boolean)];
}

/** Does `node` match the query? */
export function matchNode(query: NodeQuery, node: QueryableNode): boolean {
  switch (query.type) {
    case 'and':
      return matchNode(query.left, node) && matchNode(query.right, node);
    case 'or':
      return matchNode(query.left, node) || matchNode(query.right, node);
    case 'not':
      return !matchNode(query.operand, node);
    case 'term':
      switch (query.field) {
        case 'name':
          return query.pattern.test(node.name);
        case 'status':
          return node.status === query.value;
        case 'tag':
          return node.tags.some((tag) => query.pattern.test(tag));
        case 'attr': {
          const value = Object.prototype.hasOwnProperty.call(node.attrs, query.key!)
            ? node.attrs[query.key!]
            : undefined;
          return value !== undefined && query.pattern.test(value);
        }
        case 'fact': {
          const value = Object.prototype.hasOwnProperty.call(node.facts, query.key!)
            ? node.facts[query.key!]
            : undefined;
          // A list fact (addresses) matches when one of its items does.
          return factText(value).some((text) => query.pattern.test(text));
        }
      }
  }
}

/** A query's text back, normalised (for logs and the CLI). */
export function formatNodeQuery(query: NodeQuery): string {
  switch (query.type) {
    case 'and':
      return `(${formatNodeQuery(query.left)} AND ${formatNodeQuery(query.right)})`;
    case 'or':
      return `(${formatNodeQuery(query.left)} OR ${formatNodeQuery(query.right)})`;
    case 'not':
      return `NOT ${formatNodeQuery(query.operand)}`;
    case 'term': {
      const field = query.field === 'attr' ? query.key! : query.field === 'fact' ? `fact.${query.key!}` : query.field;
      const plain = /^[^\s()"\\]+$/.test(query.value);
      return `${field}:${plain ? query.value : JSON.stringify(query.value)}`;
    }
  }
}
