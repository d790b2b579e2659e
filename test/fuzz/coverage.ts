/**
 * Coverage feedback from V8 itself: block-level precise coverage through node:inspector
 * (`Profiler.startPreciseCoverage` with call counts and detailed ranges). After each input the
 * counters are taken (which resets them) and turned into features: (script, range, count bucket).
 * An input is interesting when it produces a feature never seen before — AFL's edge-hit-count idea
 * with V8 block ranges instead of edges. Only the scripts under test (by path) are counted.
 */
import * as inspector from 'node:inspector';

interface CoverageRange {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface ScriptCoverage {
  scriptId: string;
  url: string;
  functions: { functionName: string; ranges: CoverageRange[] }[];
}

/** Hit counts bucketed like AFL (1, 2, 3, 4–7, 8–15, 16–31, 32–127, 128+). */
function bucket(count: number): number {
  if (count <= 3) return count;
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

export class CoverageTracker {
  private readonly session = new inspector.Session();
  private readonly seen = new Set<string>();
  /** Distinct covered block ranges (ignoring hit counts): the number to watch grow. */
  private readonly blocks = new Set<string>();
  private readonly scriptIndex = new Map<string, number>();

  /** `include` selects the scripts whose coverage counts, e.g. /edge-proxy[\\/]src[\\/]tls[\\/]/. */
  constructor(private readonly include: RegExp) {}

  start(): void {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  stop(): void {
    try {
      this.post('Profiler.stopPreciseCoverage');
      this.post('Profiler.disable');
    } finally {
      this.session.disconnect();
    }
  }

  /** Counts since the last call, as new-feature count (0 = nothing new). Resets V8's counters. */
  collect(): number {
    const result = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    let fresh = 0;
    for (const script of result.result) {
      if (!this.include.test(script.url)) continue;
      let idx = this.scriptIndex.get(script.url);
      if (idx === undefined) {
        idx = this.scriptIndex.size;
        this.scriptIndex.set(script.url, idx);
      }
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          const block = `${idx}:${r.startOffset}:${r.endOffset}`;
          const key = `${block}:${bucket(r.count)}`;
          if (!this.seen.has(key)) {
            this.seen.add(key);
            fresh++;
          }
          this.blocks.add(block);
        }
      }
    }
    return fresh;
  }

  /**
   * Counts since the last call, as the number of blocks never covered before — without recording
   * anything. For batches of inputs: their summed hit counts say nothing about one input's buckets,
   * but a block no input ever reached is new whichever input reached it.
   */
  peekNewBlocks(): number {
    const result = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    let fresh = 0;
    for (const script of result.result) {
      if (!this.include.test(script.url)) continue;
      const idx = this.scriptIndex.get(script.url);
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          if (idx === undefined || !this.blocks.has(`${idx}:${r.startOffset}:${r.endOffset}`)) fresh++;
        }
      }
    }
    return fresh;
  }

  get features(): number {
    return this.seen.size;
  }

  get coveredBlocks(): number {
    return this.blocks.size;
  }

  /** The inspector session answers same-thread requests synchronously; we rely on that. */
  private post(method: string, params?: object): unknown {
    let out: unknown;
    let error: Error | null = null;
    let done = false;
    this.session.post(method, params ?? {}, (err, res) => {
      error = err;
      out = res;
      done = true;
    });
    if (!done) throw new Error(`inspector ${method} did not answer synchronously`);
    if (error) throw error;
    return out;
  }
}
