/**
 * The simulator issue's performance target: `muster simulate kubeadm --nodes 100`
 * and `noah-stack` at 100 nodes with 5% crashes each finish in < 10 s of wall
 * time. Runs them in this process (the simulator needs no server), seed 1, and
 * checks that each passed (every invariant held, every node finished).
 */
import { performance } from 'node:perf_hooks';
import { loadScenario } from '../src/sim/builtin-scenarios.js';
import { parseFaults } from '../src/sim/faults.js';
import { simulate } from '../src/sim/simulation.js';
import type { Measurement, Ratio, Scenario, ScenarioResult } from './scenario.js';
import { ratio } from './scenario.js';

const NODES = 100;
const FAULTS = 'crash=5%';
const TARGET_SECONDS = 10;

export const simulateBench: Scenario = {
  name: 'simulate',
  title: `muster simulate kubeadm and noah-stack, ${NODES} nodes, ${FAULTS}: wall time`,
  requires: [],
  async run(_settings, log): Promise<ScenarioResult> {
    const measurements: Measurement[] = [];
    const ratios: Ratio[] = [];
    const notes: string[] = [];
    for (const name of ['kubeadm', 'noah-stack']) {
      const scenario = await loadScenario(name);
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      const result = await simulate(scenario, { nodes: NODES, seed: 1, faults: parseFaults(FAULTS) });
      const wall = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const s = result.summary;
      log(
        `${name}: ${wall.toFixed(2)} s wall, ${cpuSeconds.toFixed(2)} s CPU, ${(s.virtualMs / 1000).toFixed(1)} s virtual, ${s.requests} requests`,
      );
      measurements.push({
        system: 'muster simulate',
        operation: name,
        requests: s.requests,
        seconds: wall,
        reqPerSec: s.requests / wall,
        p50Ms: 0,
        p99Ms: 0,
        maxMs: 0,
        errors: result.violations.length + (s.nodes - s.finishedNodes),
        serverCpuPercent: null,
        machineBusyPercent: null,
      });
      ratios.push(ratio(`${name} wall time (s)`, Number(wall.toFixed(2)), TARGET_SECONDS, 'at-most'));
      notes.push(
        `${name}: ${s.finishedNodes} of ${s.nodes} nodes finished, ${s.crashes} crashes, ${result.violations.length} violations, ${(s.virtualMs / 1000).toFixed(1)} s of virtual time, ${cpuSeconds.toFixed(2)} s of CPU (wall time depends on how busy the machine is)`,
      );
    }
    return {
      load: `${NODES} simulated nodes, faults ${FAULTS}, seed 1, in process (no server); errors = violations + unfinished nodes; latency columns unused`,
      measurements,
      ratios,
      notes,
    };
  },
};
