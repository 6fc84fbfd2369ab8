import type { Backend } from '../src/core/backend.js';

/** Register `count` nodes straight into the store (what 10,000 agents would have written); every third is down. */
export async function writeFleet(backend: Backend, count: number): Promise<string[]> {
  const encoder = new TextEncoder();
  const lease = await backend.grantLease(3600);
  const names: string[] = [];
  const now = new Date().toISOString();
  for (let start = 0; start < count; start += 50) {
    const ops = [];
    for (let i = start; i < Math.min(count, start + 50); i++) {
      const name = `node-${String(i).padStart(5, '0')}`;
      names.push(name);
      const record = {
        name,
        tags: i % 10 === 0 ? ['canary'] : [],
        attrs: { role: ['web', 'db', 'cache'][i % 3] as string, env: i % 2 ? 'prod' : 'staging' },
        // What a real agent detects (src/agent/agent.ts facts()).
        facts: {
          hostname: `${name}.dc1.example.com`,
          addresses: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `fd00::${i.toString(16)}`],
          os: 'linux',
          osRelease: '6.1.0-28-amd64',
          cpus: 2,
          agentVersion: '0.1.0',
          commands: ['chef-client', 'deploy', 'restart', 'uptime'],
        },
        registeredAt: now,
        lastSeen: now,
      };
      ops.push({ type: 'put' as const, key: `/muster/nodes/${name}`, value: encoder.encode(JSON.stringify(record)) });
      if (i % 3 !== 2)
        ops.push({
          type: 'put' as const,
          key: `/muster/nodes/${name}/alive`,
          value: encoder.encode(now),
          lease: lease.id,
        });
    }
    await backend.txn({ compare: [], success: ops, failure: [] });
  }
  return names;
}
