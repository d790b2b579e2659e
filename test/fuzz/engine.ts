/**
 * The fuzzing loop: run the seeds, then repeatedly pick a corpus entry, mutate it, run it, and keep
 * the mutant when V8's block coverage shows something new. Crashes and hangs are saved with their
 * input so they can be replayed (test/fuzz/crashes/ is replayed by the smoke test in `npm test`).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CoverageTracker } from './coverage';
import { Rng } from './mutators';
import type { FuzzTarget, Outcome } from './targets';

export interface FuzzOptions {
  seed: number;
  /** Stop after this long (wall clock)… */
  durationMs?: number;
  /** …or after this many mutated executions, whichever comes first. */
  maxExecs?: number;
  /** Save crashing/hanging inputs here (not saved when absent). */
  crashDir?: string;
  /** Save inputs that found new coverage here (not saved when absent). */
  corpusOut?: string;
  /** Heap limit: exceeding it (after a GC if exposed) is a finding. */
  maxHeapMb?: number;
  log?: (line: string) => void;
  /** Progress line interval. */
  progressMs?: number;
  /**
   * Mutants run between two coverage reads (default 8). Reading V8's coverage costs milliseconds,
   * far more than one input, so mutants run in batches; a batch that reaches a new block is re-run
   * one input at a time to find (and keep) the ones that did. One batch in four runs one at a time
   * anyway, so new hit-count buckets on known blocks are still found. 1 = classic per-input feedback.
   */
  batch?: number;
}

export interface Finding {
  kind: 'crash' | 'hang' | 'memory';
  label: string;
  detail: string;
  input: Buffer;
  file?: string;
}

export interface FuzzReport {
  target: string;
  seeds: number;
  execs: number;
  seconds: number;
  execsPerSecond: number;
  corpusSize: number;
  /** Covered block ranges after the seeds alone, and at the end: the coverage growth. */
  blocksAfterSeeds: number;
  blocksAtEnd: number;
  features: number;
  findings: Finding[];
  /** How inputs ended (alert names, "closed at EOF", …) with counts: a sanity view of the run. */
  outcomes: Record<string, number>;
  maxHeapMb: number;
}

/** Scripts whose coverage guides the fuzzer: the TLS engine (compiled or ts-jest-transformed). */
export const ENGINE_SCRIPTS = /edge-proxy[\\/]src[\\/]tls[\\/]/;

function heapMb(): number {
  return process.memoryUsage().heapUsed / 1048576;
}

export async function fuzz(target: FuzzTarget, opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? (() => undefined);
  const rng = new Rng(opts.seed);
  const coverage = new CoverageTracker(ENGINE_SCRIPTS);
  const corpus: Buffer[] = [];
  const findings: Finding[] = [];
  const seenFindings = new Set<string>();
  const outcomes: Record<string, number> = {};
  const maxHeap = opts.maxHeapMb ?? 1024;
  let maxHeapSeen = heapMb();
  let execs = 0;

  const record = (input: Buffer, o: Outcome): void => {
    outcomes[o.label] = (outcomes[o.label] ?? 0) + 1;
    if (o.kind === 'ok') return;
    // One report per distinct failure: label plus the first stack frame inside our code.
    const frame = /\n\s+at .*/.exec(o.detail)?.[0].trim() ?? '';
    const key = `${o.kind}:${o.label}:${frame}`;
    if (seenFindings.has(key)) return;
    seenFindings.add(key);
    const f: Finding = { kind: o.kind, label: o.label, detail: o.detail, input };
    if (opts.crashDir) {
      fs.mkdirSync(opts.crashDir, { recursive: true });
      const base = `${target.name}-${o.kind}-${crypto.createHash('sha1').update(input).digest('hex').slice(0, 12)}`;
      f.file = path.join(opts.crashDir, `${base}.bin`);
      fs.writeFileSync(f.file, input);
      fs.writeFileSync(
        path.join(opts.crashDir, `${base}.txt`),
        `${target.name}: ${o.kind} (${o.label})\n\n${o.detail}\n`,
      );
    }
    findings.push(f);
    log(
      `[${target.name}] FOUND ${o.kind}: ${o.label}${f.file ? ` → ${f.file}` : ''}\n${o.detail.split('\n').slice(0, 6).join('\n')}`,
    );
  };

  coverage.start();
  const started = Date.now();
  try {
    coverage.collect(); // drop whatever ran before us
    for (const s of target.seeds) {
      const o = await target.run(s);
      coverage.collect();
      record(s, o);
      corpus.push(s);
    }
    if (corpus.length === 0) corpus.push(Buffer.alloc(0));
    const blocksAfterSeeds = coverage.coveredBlocks;
    log(`[${target.name}] ${target.seeds.length} seeds: ${blocksAfterSeeds} blocks covered`);
    let lastProgress = Date.now();
    const deadline = opts.durationMs !== undefined ? started + opts.durationMs : Infinity;
    const maxExecs = opts.maxExecs ?? Infinity;
    const batchSize = Math.max(1, opts.batch ?? 8);
    const keep = (child: Buffer): void => {
      corpus.push(child);
      if (opts.corpusOut) {
        fs.mkdirSync(opts.corpusOut, { recursive: true });
        fs.writeFileSync(
          path.join(
            opts.corpusOut,
            `${target.name}-${crypto.createHash('sha1').update(child).digest('hex').slice(0, 12)}.bin`,
          ),
          child,
        );
      }
    };
    const mutant = (): Buffer => {
      // Favour recent discoveries (the frontier) half of the time.
      const parent = rng.chance(0.5)
        ? corpus[corpus.length - 1 - rng.below(Math.min(16, corpus.length))]
        : corpus[rng.below(corpus.length)];
      return target.mutate(rng, parent, corpus[rng.below(corpus.length)]);
    };
    while (execs < maxExecs && Date.now() < deadline) {
      const n = Math.min(batchSize, maxExecs - execs);
      const oneByOne = n === 1 || rng.chance(0.25);
      const children: Buffer[] = [];
      let child: Buffer = Buffer.alloc(0);
      for (let i = 0; i < n; i++) {
        child = mutant();
        const o = await target.run(child);
        execs++;
        record(child, o);
        if (oneByOne) {
          if (coverage.collect() > 0 && o.kind === 'ok') keep(child);
        } else if (o.kind === 'ok') children.push(child);
      }
      if (!oneByOne && coverage.peekNewBlocks() > 0) {
        // Someone in the batch reached a new block: find out who, one input at a time.
        for (const c of children) {
          const o = await target.run(c);
          if (coverage.collect() > 0 && o.kind === 'ok') keep(c);
        }
      }
      if (execs % 256 < n) {
        const h = heapMb();
        maxHeapSeen = Math.max(maxHeapSeen, h);
        if (h > maxHeap) {
          (globalThis as { gc?: () => void }).gc?.();
          if (heapMb() > maxHeap)
            record(child, {
              kind: 'crash',
              label: 'heap limit',
              detail: `heap ${heapMb().toFixed(0)} MiB > ${maxHeap} MiB after ${execs} execs`,
            });
        }
      }
      if (Date.now() - lastProgress >= (opts.progressMs ?? 5000)) {
        lastProgress = Date.now();
        const secs = (Date.now() - started) / 1000;
        log(
          `[${target.name}] ${execs} execs, ${(execs / secs).toFixed(0)}/s, corpus ${corpus.length}, blocks ${coverage.coveredBlocks} (+${coverage.coveredBlocks - blocksAfterSeeds}), features ${coverage.features}, heap ${heapMb().toFixed(0)} MiB`,
        );
      }
    }
    const seconds = (Date.now() - started) / 1000;
    return {
      target: target.name,
      seeds: target.seeds.length,
      execs,
      seconds,
      execsPerSecond: execs / Math.max(seconds, 0.001),
      corpusSize: corpus.length,
      blocksAfterSeeds,
      blocksAtEnd: coverage.coveredBlocks,
      features: coverage.features,
      findings,
      outcomes,
      maxHeapMb: Math.max(maxHeapSeen, heapMb()),
    };
  } finally {
    coverage.stop();
  }
}

/** Replays saved inputs (e.g. test/fuzz/crashes/<target>-*.bin) and returns the ones that still fail. */
export async function replay(target: FuzzTarget, files: string[]): Promise<{ file: string; outcome: Outcome }[]> {
  const failing: { file: string; outcome: Outcome }[] = [];
  for (const file of files) {
    const outcome = await target.run(fs.readFileSync(file));
    if (outcome.kind !== 'ok') failing.push({ file, outcome });
  }
  return failing;
}
