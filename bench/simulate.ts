/**
 * The simulator issue's performance target: `muster simulate kubeadm --nodes 100`
 * and `noah-stack` at 100 nodes with 5% crashes each finish in < 10 s of wall
 * time. Runs them in this process (the simulator needs no server), seed 1, and
 * checks that each passed (every invariant held, every node finished); then the
 * same for `rolling-release` (no target of its own: reported). Each run's CPU
 * time and the event loop's utilization are reported too: a run keeps the
 * event loop busy all the time (it never waits on real time), so on a loaded
 * machine its wall time is its CPU time stretched by the other processes.
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
const SCENARIOS = ['kubeadm', 'noah-stack', 'rolling-release'] as const;
/** The scenarios the issue sets the target for. */
const TARGETED: ReadonlySet<string> = new Set(['kubeadm', 'noah-stack']);

export const simulateBench: Scenario = {
  name: 'simulate',
  title: `muster simulate kubeadm, noah-stack and rolling-release, ${NODES} nodes, ${FAULTS}: wall and CPU time`,
  requires: [],
  async run(_settings, log): Promise<ScenarioResult> {
    const measurements: Measurement[] = [];
    const ratios: Ratio[] = [];
    const notes: string[] = [];
    for (const name of SCENARIOS) {
      const scenario = await loadScenario(name);
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      const loopBefore = performance.eventLoopUtilization();
      const result = await simulate(scenario, { nodes: NODES, seed: 1, faults: parseFaults(FAULTS) });
      const wall = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const loop = performance.eventLoopUtilization(loopBefore).utilization;
      const s = result.summary;
      log(
        `${name}: ${wall.toFixed(2)} s wall, ${cpuSeconds.toFixed(2)} s CPU, event loop busy ${(loop * 100).toFixed(1)}%, ${(s.virtualMs / 1000).toFixed(1)} s virtual, ${s.requests} requests`,
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
      if (TARGETED.has(name)) {
        ratios.push(ratio(`${name} wall time (s)`, Number(wall.toFixed(2)), TARGET_SECONDS, 'at-most'));
        ratios.push(ratio(`${name} CPU time (s)`, Number(cpuSeconds.toFixed(2)), TARGET_SECONDS, 'at-most'));
      }
      const plan = s.release
        ? `, plan ${s.plan ? `${s.plan.state}${s.plan.reason ? ` (${s.plan.reason})` : ''}` : 'not applied'}, ${s.jobAssignments} job assignments`
        : '';
      notes.push(
        `${name}: ${s.finishedNodes} of ${s.nodes} nodes ${s.release ? 'settled' : 'finished'}, ${s.crashes} crashes, ${result.violations.length} violations${plan}, ${(s.virtualMs / 1000).toFixed(1)} s of virtual time, ${wall.toFixed(2)} s wall, ${cpuSeconds.toFixed(2)} s of CPU, event loop busy ${(loop * 100).toFixed(1)}% of the wall time (wall time depends on how busy the machine is; CPU time much less)`,
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
