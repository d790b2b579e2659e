/**
 * Handshake latency at concurrency 1, measured by a Node (OpenSSL) client in the bench process:
 * one new connection at a time, no session reuse, the server certificate verified against the CA.
 * `handshakeMs` = TCP connect start → client sees the server Finished (`secureConnect`);
 * `totalMs` = connect start → end of the response to one small GET with `Connection: close`.
 */
import * as tls from 'node:tls';

export interface LatencySample {
  handshakeMs: number;
  totalMs: number;
}

export interface LatencyOptions {
  port: number;
  path: string;
  ca: string;
  servername?: string;
  /** Connections measured (after `warmup` unmeasured ones). */
  count: number;
  warmup: number;
  /** Stop early once this much time has been spent measuring. */
  maxMs: number;
}

function one(o: LatencyOptions): Promise<LatencySample> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let t1 = NaN;
    let status = '';
    const socket = tls.connect({
      host: '127.0.0.1',
      port: o.port,
      ca: o.ca,
      servername: o.servername ?? 'localhost',
      minVersion: 'TLSv1.3',
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('latency probe: no progress for 10 s')));
    socket.once('secureConnect', () => {
      t1 = performance.now();
      socket.write(`GET ${o.path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      if (!status) status = d.subarray(0, 12).toString();
    });
    socket.once('error', reject);
    socket.once('close', () => {
      const t2 = performance.now();
      if (!Number.isFinite(t1))
        return reject(new Error('latency probe: connection closed before the handshake completed'));
      if (!status.startsWith('HTTP/1.'))
        return reject(new Error(`latency probe: no HTTP response (${JSON.stringify(status)})`));
      resolve({ handshakeMs: t1 - t0, totalMs: t2 - t0 });
    });
  });
}

export async function measureLatency(o: LatencyOptions): Promise<LatencySample[]> {
  for (let i = 0; i < o.warmup; i++) await one(o);
  const out: LatencySample[] = [];
  const start = performance.now();
  while (out.length < o.count && performance.now() - start < o.maxMs) out.push(await one(o));
  return out;
}
