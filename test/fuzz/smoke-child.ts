/**
 * One seeded fuzz run in a process of its own, for the smoke test in `npm test`
 * (test/unit/edge-proxy/tls/fuzz-smoke.test.ts): V8 block coverage only counts blocks of functions compiled after
 * coverage starts, so in a jest worker that already ran other TLS tests the engine's functions come
 * from the compilation cache without block counters and the coverage feedback looks flat. A fresh
 * process sees the engine exactly as `npm run fuzz` does.
 *
 *   node dist/test/fuzz/smoke-child.js <target> <seed> <execs> <crashDir>   → one JSON FuzzReport on stdout
 */
import { fuzz } from './engine';
import { allTargets } from './targets';

async function main(): Promise<void> {
  const [name, seed, execs, crashDir] = process.argv.slice(2);
  const targets = allTargets();
  const target = targets.find((t) => t.name === name);
  if (!target) throw new Error(`unknown fuzz target ${name}; choose from ${targets.map((t) => t.name).join(', ')}`);
  const report = await fuzz(target, { seed: Number(seed), maxExecs: Number(execs), crashDir });
  for (const t of targets) t.close?.();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
