/**
 * CPU accounting from /proc (Linux): how much CPU a server process used during a
 * run, and how busy the whole machine was. Both answer "was the server or the
 * machine the limit?" when reading the bench's numbers.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times; 100 on every mainstream Linux build. */
const TICKS_PER_SECOND = 100;

/** A reading of one process's CPU time and of the machine's CPU counters. */
export interface CpuSample {
  readonly at: number;
  /** utime + stime of the process, in ticks; null if it could not be read. */
  readonly processTicks: number | null;
  readonly machineBusy: number;
  readonly machineTotal: number;
}

/** Read the counters now; `pid` null reads the machine only. */
export function sampleCpu(pid: number | null): CpuSample {
  const [busy, total] = machineTicks();
  return {
    at: performance.now(),
    processTicks: pid === null ? null : processTicks(pid),
    machineBusy: busy,
    machineTotal: total,
  };
}

/** CPU of the process between two samples, in % of one core. */
export function processCpuPercent(from: CpuSample, to: CpuSample): number | null {
  if (from.processTicks === null || to.processTicks === null) return null;
  const seconds = (to.at - from.at) / 1000;
  return seconds > 0 ? (100 * (to.processTicks - from.processTicks)) / TICKS_PER_SECOND / seconds : null;
}

/** Busy share of all cores between two samples, in %. */
export function machineBusyPercent(from: CpuSample, to: CpuSample): number | null {
  const total = to.machineTotal - from.machineTotal;
  return total > 0 ? (100 * (to.machineBusy - from.machineBusy)) / total : null;
}

/** The pid of the one running process whose command line contains `fragment`, or null. */
export function findPid(fragment: string): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(fragment)) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return null;
}

function processTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5): indexes 11 and 12 here.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

function machineTicks(): [busy: number, total: number] {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((sum, t) => sum + t, 0);
    // idle and iowait are the 4th and 5th counters.
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return [total - idle, total];
  } catch {
    return [0, 0];
  }
}
