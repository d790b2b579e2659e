/**
 * `npm run fuzz`: coverage-guided fuzzing of the TLS engine for a bounded time.
 *
 *   FUZZ_SECONDS   total time, split evenly across the targets (default 300)
 *   FUZZ_TARGETS   comma-separated subset: record, handshake-parser, server-tls13, server-tls12, server-mtls
 *   FUZZ_SEED      seed of the mutation stream (default: random, printed so a run can be repeated)
 *   FUZZ_CORPUS_OUT  folder to save coverage-increasing inputs in (default: not saved)
 *
 * Prints execs/s and coverage growth; saves crashing and hanging inputs to test/fuzz/crashes/ and
 * exits 1 if there were any. See docs/fuzzing.md.
 */
import * as path from 'node:path';
import { fuzz, FuzzReport } from './engine';
import { allTargets, corpusDir } from './targets';

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${name}=${v} is not a whole number; set e.g. ${name}=${fallback}`);
  return n;
}

async function main(): Promise<void> {
  const seconds = envInt('FUZZ_SECONDS', 300);
  const seed = envInt('FUZZ_SEED', Math.floor(Math.random() * 0x7fffffff));
  const targets = allTargets();
  const wanted = (process.env.FUZZ_TARGETS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((w) => !targets.some((t) => t.name === w));
  if (unknown.length)
    throw new Error(
      `FUZZ_TARGETS names unknown target(s) ${unknown.join(', ')}; choose from ${targets.map((t) => t.name).join(', ')}`,
    );
  const selected = wanted.length ? targets.filter((t) => wanted.includes(t.name)) : targets;
  const crashDir = path.join(path.dirname(corpusDir()), 'crashes');
  const corpusOut = process.env.FUZZ_CORPUS_OUT || undefined;
  // An exception that escapes every handler is a finding in itself: print and fail.
  let escaped = 0;
  process.on('uncaughtException', (err) => {
    escaped++;
    console.error('FOUND uncaught exception:', err);
  });
  process.on('unhandledRejection', (err) => {
    escaped++;
    console.error('FOUND unhandled rejection:', err);
  });
  console.log(
    `fuzzing ${selected.map((t) => t.name).join(', ')} for ${seconds} s, seed ${seed} (FUZZ_SEED=${seed} repeats the mutation stream)`,
  );
  const reports: FuzzReport[] = [];
  for (const t of selected) {
    reports.push(
      await fuzz(t, {
        seed,
        durationMs: (seconds * 1000) / selected.length,
        crashDir,
        corpusOut,
        log: (l) => console.log(l),
      }),
    );
  }
  for (const t of targets) t.close?.();
  console.log('\ntarget              execs   execs/s  corpus  blocks (seeds → end)  findings  max heap');
  for (const r of reports) {
    console.log(
      `${r.target.padEnd(18)} ${String(r.execs).padStart(7)} ${r.execsPerSecond.toFixed(0).padStart(9)} ${String(r.corpusSize).padStart(7)}  ${String(r.blocksAfterSeeds).padStart(6)} → ${String(r.blocksAtEnd).padEnd(12)} ${String(r.findings.length).padStart(8)}  ${r.maxHeapMb.toFixed(0)} MiB`,
    );
  }
  for (const r of reports) {
    const top = Object.entries(r.outcomes)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8);
    console.log(`\n${r.target} outcomes: ${top.map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  }
  const found = reports.reduce((n, r) => n + r.findings.length, 0) + escaped;
  if (found > 0) {
    console.log(`\n${found} finding(s); inputs saved under ${crashDir}`);
    process.exitCode = 1;
  } else console.log('\nno crashes, hangs or escaped exceptions');
  // Connections' deferred socket teardown timers are unref'd; nothing else keeps us alive.
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(2);
});
