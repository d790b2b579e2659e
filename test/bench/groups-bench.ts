/**
 * Section "groups" of `npm run bench`: CPU per full TLS 1.3 handshake with the post-quantum hybrid
 * X25519MLKEM768 next to X25519, in the same run. One engine-only server (the edge's TLS engine with
 * an in-process RSA-2048 signer, test/bench/engine-server.ts), one Node 24 client pool offering only
 * the group under test; runs interleave (hybrid, X25519, X25519, hybrid, ...) so a busy machine
 * affects both alike. The server counts the handshakes per group, so every run is checked to have
 * negotiated the group it asked for. CPU comes from /proc (server process) and the client's own
 * process.cpuUsage().
 */
import { runLoad } from './loadgen';
import { startCpuWindow, HAVE_PROC } from './proc';
import { fmtMs, type Table } from './report';
import { median } from './stats';
import { startEngineTarget, type ReferencePki } from './targets';

export const BENCH_GROUPS = [
  { name: 'X25519MLKEM768', openssl: 'X25519MLKEM768' },
  { name: 'x25519', openssl: 'X25519' },
] as const;
type GroupName = (typeof BENCH_GROUPS)[number]['name'];

export interface GroupRun {
  group: GroupName;
  handshakes: number;
  /** Server (engine process) CPU ms per handshake. */
  serverMs: number;
  /** Client (Node pool) CPU ms per handshake. */
  clientMs: number;
  rate: number;
}

export interface GroupsResult {
  runs: GroupRun[];
  c: number;
  problems: string[];
  loadAverage: string;
}

export async function runGroupsBench(o: {
  pki: ReferencePki;
  reps: number;
  connections: number;
  c: number;
  log: (line: string) => void;
  loadAverage: () => string;
}): Promise<GroupsResult> {
  const result: GroupsResult = { runs: [], c: o.c, problems: [], loadAverage: o.loadAverage() };
  if (!HAVE_PROC) {
    result.problems.push('no /proc: server CPU cannot be measured');
    return result;
  }
  const target = await startEngineTarget(o.pki);
  try {
    // Warm-up: JIT, key-import paths, both groups.
    for (const g of BENCH_GROUPS)
      await runLoad('node', { url: target.url, n: 100, c: o.c, timeoutMs: 60_000, groups: g.openssl });
    for (let rep = 0; rep < o.reps; rep++) {
      const order = rep % 2 === 0 ? BENCH_GROUPS : [...BENCH_GROUPS].reverse();
      for (const g of order) {
        const end = await target.beginWindow();
        const cpu = startCpuWindow(target.processes);
        const load = await runLoad('node', {
          url: target.url,
          n: o.connections,
          c: o.c,
          timeoutMs: 120_000,
          groups: g.openssl,
        });
        const serverCpu = cpu().groups.engine ?? NaN;
        const check = await end(load.succeeded);
        const negotiated = new RegExp(`groups .*\\b${g.name} ×(\\d+)`).exec(check.detail ?? '');
        const handshakes = negotiated ? Number(negotiated[1]) : 0;
        if (load.failed > 0 || handshakes !== load.succeeded) {
          result.problems.push(
            `${g.name} run ${rep + 1}: ${load.failed} failed, ${handshakes} of ${load.succeeded} handshakes in ${g.name} (${check.detail})`,
          );
        }
        const run: GroupRun = {
          group: g.name,
          handshakes,
          serverMs: serverCpu / Math.max(1, handshakes),
          clientMs: load.clientCpuMs / Math.max(1, load.succeeded),
          rate: load.rate,
        };
        result.runs.push(run);
        o.log(
          `${g.name.padEnd(15)} run ${rep + 1}: ${handshakes} full handshakes, server ${fmtMs(run.serverMs)} ms CPU each, client ${fmtMs(run.clientMs)} ms, ${run.rate.toFixed(0)}/s`,
        );
      }
    }
  } finally {
    await target.stop();
  }
  return result;
}

export function groupsTable(r: GroupsResult): Table {
  const med = (g: GroupName, f: (x: GroupRun) => number): number => median(r.runs.filter((x) => x.group === g).map(f));
  const [hybrid, classic] = BENCH_GROUPS.map((g) => g.name);
  const rows = BENCH_GROUPS.map((g) => [
    g.name,
    String(r.runs.filter((x) => x.group === g.name).reduce((a, x) => a + x.handshakes, 0)),
    fmtMs(med(g.name, (x) => x.serverMs)),
    fmtMs(med(g.name, (x) => x.clientMs)),
    med(g.name, (x) => x.rate).toFixed(0),
  ]);
  const dServer = med(hybrid, (x) => x.serverMs) - med(classic, (x) => x.serverMs);
  const dClient = med(hybrid, (x) => x.clientMs) - med(classic, (x) => x.clientMs);
  rows.push([
    'difference (hybrid − X25519)',
    '',
    `${dServer >= 0 ? '+' : ''}${fmtMs(dServer)}`,
    `${dClient >= 0 ? '+' : ''}${fmtMs(dClient)}`,
    '',
  ]);
  return {
    title: `CPU per full handshake, X25519MLKEM768 vs X25519, same run (TLS 1.3, engine with in-process RSA-2048 signer, Node client pool, c=${r.c})`,
    head: [
      'group',
      'handshakes',
      'server CPU ms / handshake (median)',
      'client CPU ms / handshake (median)',
      'handshakes/s (median)',
    ],
    rows,
    note: `Runs interleaved; every handshake's group counted by the server. Server CPU includes the RSA-2048 signature, the same for both groups. Load average at the start: ${r.loadAverage}.${r.problems.length ? ` Problems: ${r.problems.join('; ')}` : ''}`,
  };
}
