import { test } from 'vitest';
import { loadScenario } from '../../src/sim/builtin-scenarios.js';
import { simulate } from '../../src/sim/simulation.js';
import { formatSummary, formatTimeline } from '../../src/sim/report.js';
import { parseFaults } from '../../src/sim/faults.js';

test('scratch', async () => {
  const name = process.env.SIM ?? 'kubeadm';
  const scenario = await loadScenario(name);
  const result = await simulate(scenario, { seed: Number(process.env.SEED ?? 1), nodes: process.env.NODES ? Number(process.env.NODES) : undefined, faults: parseFaults(process.env.FAULTS ?? '') });
  const { writeFileSync } = await import('node:fs');
  if (process.env.OUT) writeFileSync(process.env.OUT, formatTimeline(result) + formatSummary(result).replace(/wall time.*\n/, ''));
  process.stdout.write(formatSummary(result));
}, 120_000);
