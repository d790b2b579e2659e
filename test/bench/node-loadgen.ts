/**
 * Fallback load generator (child process) when h2load is missing: C concurrent loops, each opening
 * a new TLS connection (no session reuse), sending one HTTP/1.1 request with `Connection: close`
 * and reading the response to the end, until N requests have been started.
 * argv[2]: JSON {url, n, c, maxVersion?, ciphers?}. Prints one JSON line {succeeded, failed, seconds,
 * cpuMs, protocol, cipher}. `maxVersion: 'TLSv1.2'` (with `ciphers`, an OpenSSL TLS 1.2 cipher list)
 * drives full TLS 1.2 handshakes: no session is ever offered for reuse.
 */
import * as tls from 'node:tls';

interface Args {
  url: string;
  n: number;
  c: number;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  ciphers?: string;
}

function once(u: URL, a: Args, state: { protocol?: string; cipher?: string }): Promise<boolean> {
  return new Promise((resolve) => {
    let ok = false;
    const tls12 = a.maxVersion === 'TLSv1.2';
    const socket = tls.connect({
      host: u.hostname,
      port: Number(u.port),
      rejectUnauthorized: false,
      minVersion: tls12 ? 'TLSv1.2' : 'TLSv1.3',
      maxVersion: tls12 ? 'TLSv1.2' : 'TLSv1.3',
      ...(a.ciphers ? { ciphers: a.ciphers } : {}),
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('secureConnect', () => {
      state.protocol ??= socket.getProtocol() ?? undefined;
      state.cipher ??= socket.getCipher()?.standardName;
      socket.write(`GET ${u.pathname} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      if (!ok && d.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) ok = true;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(ok));
  });
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]) as Args;
  const u = new URL(a.url);
  const state: { protocol?: string; cipher?: string } = {};
  let started = 0;
  let succeeded = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = async (): Promise<void> => {
    while (started < a.n) {
      started++;
      if (await once(u, a, state)) succeeded++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(a.c, a.n) }, loop));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ succeeded, failed, seconds, cpuMs: (cpu.user + cpu.system) / 1000, ...state })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`node-loadgen: ${String(e)}\n`);
  process.exit(1);
});
