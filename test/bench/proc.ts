/**
 * CPU accounting from /proc (Linux): per-process user+system time and machine-wide busy time, so
 * the report can say which process burns how many CPU milliseconds per handshake.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

let clkTck: number | undefined;
/** Clock ticks per second of the utime/stime fields (getconf CLK_TCK, 100 on Linux). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clkTck = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clkTck;
}

export const HAVE_PROC = fs.existsSync('/proc/self/stat') && fs.existsSync('/proc/stat');

/** Fields of /proc/<pid>/stat after the `(comm)` field, so field 3 (state) is index 0. */
function statFields(pid: number): string[] | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime of a process in milliseconds, or undefined when it is gone. */
export function processCpuMs(pid: number): number | undefined {
  const f = statFields(pid);
  if (!f) return undefined;
  return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks();
}

/** Direct children of a process (scans /proc). */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === ppid) out.push(Number(name));
  }
  return out;
}

/** Machine-wide busy and total CPU time (ms, summed over all cores) from /proc/stat. */
export function machineCpuMs(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user/nice).
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + (v[4] ?? 0);
  const k = 1000 / clockTicks();
  return { busy: (total - idle) * k, total: total * k };
}

/** A named group of processes whose CPU time is summed (e.g. nginx master + workers). */
export type ProcessGroups = Record<string, () => number[]>;

export interface CpuDelta {
  /** CPU ms per group over the window. */
  groups: Record<string, number>;
  /** Machine busy time as a fraction of all cores' time over the window (0..1). */
  machineBusy: number;
  /** Machine busy and total CPU ms (all cores) over the window. */
  machineBusyMs: number;
  machineTotalMs: number;
}

/** Snapshot now; call the returned function at the end of the window to get the deltas. */
export function startCpuWindow(groups: ProcessGroups): () => CpuDelta {
  if (!HAVE_PROC) return () => ({ groups: {}, machineBusy: NaN, machineBusyMs: NaN, machineTotalMs: NaN });
  const before = new Map<string, Map<number, number>>();
  for (const [name, pids] of Object.entries(groups)) {
    const m = new Map<number, number>();
    for (const pid of pids()) m.set(pid, processCpuMs(pid) ?? 0);
    before.set(name, m);
  }
  const m0 = machineCpuMs();
  return () => {
    const m1 = machineCpuMs();
    const out: Record<string, number> = {};
    for (const [name, pids] of Object.entries(groups)) {
      const b = before.get(name)!;
      let sum = 0;
      for (const pid of new Set([...pids(), ...b.keys()])) {
        const now = processCpuMs(pid);
        if (now !== undefined) sum += now - (b.get(pid) ?? 0);
      }
      out[name] = sum;
    }
    const total = m1.total - m0.total;
    return {
      groups: out,
      machineBusy: total > 0 ? (m1.busy - m0.busy) / total : NaN,
      machineBusyMs: m1.busy - m0.busy,
      machineTotalMs: total,
    };
  };
}
