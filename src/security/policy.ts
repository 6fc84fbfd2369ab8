/**
 * What a token may do: rules over key prefixes (read, write or deny; the longest
 * matching prefix decides), capabilities for everything that is not a key, and the
 * primitive names it may use. Each role is a fixed policy; a custom token carries
 * its own. One decision function per kind of access, used by the server's one
 * enforcement point (server/access.ts).
 */
import Type from 'typebox';
import { AUDIT_PREFIX } from './audit-log.js';
import type { Static } from 'typebox';

export const ROLES = ['admin', 'operator', 'reader', 'node', 'cluster', 'custom', 'enrol'] as const;
export type Role = (typeof ROLES)[number];

export const CAPABILITIES = ['jobs:run', 'tokens:manage', 'hooks:manage', 'audit:read'] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** Where muster keeps tokens and lease owners: no role but admin reads it. */
export const AUTH_PREFIX = '/muster/auth/';

export const PolicyRule = Type.Object(
  {
    prefix: Type.String({ minLength: 1, maxLength: 1024, pattern: '^/(?:.*/)?$' }),
    access: Type.Enum(['read', 'write', 'deny']),
  },
  { additionalProperties: false },
);
export type PolicyRule = Static<typeof PolicyRule>;

/** A custom policy (`muster token create --policy FILE`). */
export const CustomPolicy = Type.Object(
  {
    rules: Type.Array(PolicyRule, { maxItems: 100 }),
    capabilities: Type.Optional(Type.Array(Type.Enum([...CAPABILITIES]), { maxItems: CAPABILITIES.length })),
    primitives: Type.Optional(
      Type.Array(Type.String({ pattern: '^(?:\\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:\\.\\*)?)$' }), {
        maxItems: 100,
        description: 'Names this token may use: "*" (all), "k8s" (exactly), "k8s.*" (k8s and k8s.anything)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CustomPolicy = Static<typeof CustomPolicy>;

export interface Decision {
  readonly allowed: boolean;
  /** The rule that decided, for the 403 message: `write /nodes/web-3/`, `role reader`… */
  readonly rule: string;
}

export type KeyMode = 'read' | 'write';

export interface PolicySpec {
  readonly role: Role;
  readonly node?: string | undefined;
  readonly cluster?: string | undefined;
  readonly policy?: CustomPolicy | undefined;
}

const ALL_PRIMITIVES = ['*'];

/** The effective policy of a token. */
export class Policy {
  readonly rules: readonly PolicyRule[];
  readonly capabilities: ReadonlySet<Capability>;
  /** Primitive names this token may use (acquire, campaign, enter…). */
  private readonly usable: readonly string[];
  /** Primitive names whose state this token may read. */
  private readonly readable: readonly string[];

  constructor(readonly spec: PolicySpec) {
    const { rules, capabilities, use, read } = roleParts(spec);
    // Longest prefix first: the first rule that matches decides.
    this.rules = [...rules].sort((a, b) => b.prefix.length - a.prefix.length);
    this.capabilities = new Set(capabilities);
    this.usable = use;
    this.readable = read;
  }

  get isAdmin(): boolean {
    return this.spec.role === 'admin';
  }

  /**
   * May this token read or write `key`? Besides its rules, a token may read the
   * keys of a primitive it may read (a holder watches its own key to notice loss).
   */
  key(key: string, mode: KeyMode): Decision {
    const rule = this.rules.find((r) => key.startsWith(r.prefix));
    if (rule && grants(rule.access, mode)) return { allowed: true, rule: `${rule.access} ${rule.prefix}` };
    const primitive = mode === 'read' ? primitiveOf(key) : null;
    if (primitive !== null && rule?.access !== 'deny' && this.primitive(primitive, 'read').allowed) {
      return { allowed: true, rule: `primitive ${primitive}` };
    }
    if (!rule) return { allowed: false, rule: `no rule of ${this.describe()} covers ${key}` };
    return { allowed: false, rule: `${rule.access} ${rule.prefix}` };
  }

  /** Fast form of `key(k, 'read').allowed`, for filtering events and ranges. */
  canRead(key: string): boolean {
    const rule = this.rules.find((r) => key.startsWith(r.prefix));
    if (rule !== undefined && rule.access !== 'deny') return true;
    const primitive = primitiveOf(key);
    return primitive !== null && rule?.access !== 'deny' && this.primitive(primitive, 'read').allowed;
  }

  /**
   * May this token read or write every key under `prefix`? Allowed when the rule
   * covering the prefix allows; `narrower` lists rules inside it that allow less
   * (a read is then filtered by `canRead`; a write under such a prefix is refused).
   */
  prefix(prefix: string, mode: KeyMode): Decision & { readonly narrower: readonly PolicyRule[] } {
    // A prefix inside one primitive's keys reads as its keys do.
    const primitive = mode === 'read' ? primitiveOf(prefix) : null;
    if (primitive !== null && this.key(prefix, 'read').allowed) {
      return { ...this.key(prefix, 'read'), narrower: [] };
    }
    const covering = this.rules.find((r) => prefix.startsWith(r.prefix));
    const narrower = this.rules.filter((r) => r.prefix.startsWith(prefix) && r !== covering && !grants(r.access, mode));
    if (!covering) return { allowed: false, rule: `no rule of ${this.describe()} covers ${prefix}`, narrower };
    if (!grants(covering.access, mode)) {
      return { allowed: false, rule: `${covering.access} ${covering.prefix}`, narrower };
    }
    if (mode === 'write' && narrower[0]) {
      return { allowed: false, rule: `${narrower[0].access} ${narrower[0].prefix}`, narrower };
    }
    return { allowed: true, rule: `${covering.access} ${covering.prefix}`, narrower };
  }

  /** May this token use (`use`) or read the state of (`read`) the primitive named `name`? */
  primitive(name: string, mode: 'use' | 'read'): Decision {
    const patterns = mode === 'use' ? this.usable : this.readable;
    const allowed = patterns.some((p) => nameMatches(p, name));
    return { allowed, rule: allowed ? `primitives ${patterns.join(', ')}` : this.primitiveRule(mode) };
  }

  capability(capability: Capability): Decision {
    return {
      allowed: this.capabilities.has(capability),
      rule: `${this.describe()} ${this.capabilities.has(capability) ? 'has' : 'lacks'} ${capability}`,
    };
  }

  describe(): string {
    const { role, node, cluster } = this.spec;
    if (role === 'node') return `role node (${node ?? '?'})`;
    if (role === 'cluster') return `role cluster (${cluster ?? '?'})`;
    return `role ${role}`;
  }

  private primitiveRule(mode: 'use' | 'read'): string {
    const patterns = mode === 'use' ? this.usable : this.readable;
    return patterns.length === 0
      ? `${this.describe()} may not ${mode} primitives`
      : `${this.describe()} may ${mode} only primitives ${patterns.join(', ')}`;
  }
}

const PRIMITIVE_KEY = /^\/muster\/(?:locks|semaphores|elections|barriers|once)\/([^/]+)\//;

/** The name of the primitive whose keys `key` is among, or null. */
function primitiveOf(key: string): string | null {
  return PRIMITIVE_KEY.exec(key)?.[1] ?? null;
}

function grants(access: PolicyRule['access'], mode: KeyMode): boolean {
  return access === 'write' || (access === 'read' && mode === 'read');
}

function nameMatches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) {
    const base = pattern.slice(0, -2);
    return name === base || name.startsWith(base + '.');
  }
  return name === pattern;
}

function roleParts(spec: PolicySpec): {
  rules: PolicyRule[];
  capabilities: Capability[];
  use: string[];
  read: string[];
} {
  const hideAuth: PolicyRule = { prefix: AUTH_PREFIX, access: 'deny' };
  // The audit log is read through GET /v1/audit (audit:read), not as keys.
  const hideAudit: PolicyRule = { prefix: AUDIT_PREFIX, access: 'deny' };
  switch (spec.role) {
    case 'admin':
      return {
        rules: [{ prefix: '/', access: 'write' }],
        capabilities: [...CAPABILITIES],
        use: ALL_PRIMITIVES,
        read: ALL_PRIMITIVES,
      };
    case 'operator':
      return {
        rules: [{ prefix: '/', access: 'write' }, { prefix: '/muster/', access: 'read' }, hideAuth, hideAudit],
        capabilities: ['jobs:run', 'hooks:manage'],
        use: ALL_PRIMITIVES,
        read: ALL_PRIMITIVES,
      };
    case 'reader':
      return {
        rules: [{ prefix: '/', access: 'read' }, hideAuth, hideAudit],
        capabilities: [],
        use: [],
        read: ALL_PRIMITIVES,
      };
    case 'node':
      return {
        rules: [
          { prefix: `/nodes/${spec.node ?? ''}/`, access: 'write' },
          // Its group's desired state (docs/plans.md): a recipe watches or waits on it.
          { prefix: '/muster/desired/', access: 'read' },
          ...(spec.policy?.rules ?? []),
        ],
        capabilities: [],
        use: ALL_PRIMITIVES,
        read: ALL_PRIMITIVES,
      };
    case 'cluster': {
      const names = [`${spec.cluster ?? ''}.*`];
      return {
        rules: [{ prefix: `/clusters/${spec.cluster ?? ''}/`, access: 'write' }],
        capabilities: [],
        use: names,
        read: names,
      };
    }
    case 'enrol':
      // Only POST /v1/enrol (server/access.ts), which turns it into a node token.
      return { rules: [], capabilities: [], use: [], read: [] };
    case 'custom':
      return {
        rules: [...(spec.policy?.rules ?? []), hideAuth],
        capabilities: [...(spec.policy?.capabilities ?? [])],
        use: [...(spec.policy?.primitives ?? [])],
        read: [...(spec.policy?.primitives ?? [])],
      };
  }
}
