/**
 * Memory under large ClientHellos: a legal ClientHello may be 131,396 bytes (docs/tls-engine.md), so
 * the edge must buffer up to that much per connection before it can parse one. 500 connections each
 * send 127 KiB of one and stop. The edge (the real assembly, in this process; the clients in a child
 * process) must keep its RSS within the bound docs/tls-engine.md documents, and /healthz must keep
 * answering 200.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { startInProcessEdge, type InProcessEdge } from '../helpers/in-process-edge';
import { MAX_CLIENT_HELLO } from '../../edge-proxy/src/tls/msgs/limits';

const CONNECTIONS = 500;
const SENT = 127 * 1024;
const MiB = 1024 * 1024;
/** The documented bound: RSS growth at most 2.5× the ClientHello bytes held (500 × 127 KiB ≈ 62 MiB). */
const RSS_BOUND = 2.5 * CONNECTIONS * SENT;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function memory(): { rss: number; buffers: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, buffers: m.arrayBuffers };
}

/**
 * The clients: each connects and sends the first 127 KiB of a ClientHello that announces the
 * largest legal size, as 16 KiB records, then waits. Prints `sent` when every write is done and
 * `closed N` if the edge closes any connection; exits when its stdin closes.
 */
const CLIENTS = `
const net = require('node:net');
const [port, n, sent, announced] = process.argv.slice(1).map(Number);
const message = Buffer.alloc(sent, 0x0a);
message[0] = 1;
message.writeUIntBE(announced, 1, 3);
message.writeUInt16BE(0x0303, 4);
const records = [];
for (let off = 0; off < message.length; off += 16384) {
  const f = message.subarray(off, off + 16384);
  records.push(Buffer.from([22, 3, 1, f.length >> 8, f.length & 0xff]), f);
}
const bytes = Buffer.concat(records);
let written = 0;
for (let i = 0; i < n; i++) {
  const s = net.connect(port, '127.0.0.1', () => s.write(bytes, () => { if (++written === n) process.stdout.write('sent\\n'); }));
  s.on('error', () => undefined);
  s.on('close', () => process.stdout.write('closed 1\\n'));
}
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

/** Open connections and bytes read on the TLS listener, from the edge's /metrics. */
async function edgeCounts(): Promise<{ active: number; bytesIn: number }> {
  const text = await (await fetch(`http://127.0.0.1:${e.edge.adminPort}/metrics`)).text();
  const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
  return {
    active: value(/^keyless_edge_active_connections(?:\{\})? (\d+)/m),
    bytesIn: value(/^keyless_edge_bytes_total\{direction="in"\} (\d+)/m),
  };
}

let e: InProcessEdge;
let clients: ChildProcess | undefined;
beforeAll(async () => {
  e = await startInProcessEdge({ handshakeTimeoutMs: 120_000 });
});
afterAll(async () => {
  clients?.kill();
  await e.stop();
});

it(`holds ${CONNECTIONS} connections that each sent 127 KiB of a ClientHello within the documented RSS bound, /healthz 200`, async () => {
  const before = memory();
  const total = CONNECTIONS * SENT;
  clients = spawn(
    process.execPath,
    ['-e', CLIENTS, String(e.port), String(CONNECTIONS), String(SENT), String(MAX_CLIENT_HELLO)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let output = '';
  clients.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  // Wait until the edge has accepted every connection and read every byte (the clients' writes
  // complete when the kernel has the bytes, not the edge), as its own /metrics count them.
  const wireBytes = CONNECTIONS * (SENT + 5 * Math.ceil(SENT / 16_384));
  const deadline = Date.now() + 120_000;
  let seen = { active: 0, bytesIn: 0 };
  while (Date.now() < deadline && !(seen.active >= CONNECTIONS && seen.bytesIn >= wireBytes)) {
    await new Promise((r) => setTimeout(r, 500));
    seen = await edgeCounts();
  }
  const after = memory();
  const grown = after.rss - before.rss;
  const held = after.buffers - before.buffers;
  process.stdout.write(
    `[large-client-hello] ${CONNECTIONS} × 127 KiB (${(total / MiB).toFixed(1)} MiB): buffers held ${(held / MiB).toFixed(1)} MiB, RSS grew ${(grown / MiB).toFixed(1)} MiB (bound ${(RSS_BOUND / MiB).toFixed(1)} MiB)\n`,
  );
  expect(output).toContain('sent');
  expect(seen).toEqual({ active: CONNECTIONS, bytesIn: wireBytes });
  expect(output).not.toContain('closed'); // every connection is still waiting for the rest of its ClientHello
  // The edge really holds what was sent, and not much more than one copy of it.
  expect(held).toBeGreaterThan(0.95 * total);
  expect(held).toBeLessThan(1.5 * total);
  expect(grown).toBeLessThan(RSS_BOUND);
  const health = await fetch(`http://127.0.0.1:${e.edge.adminPort}/healthz`);
  expect(health.status).toBe(200);
}, 180_000);
