/**
 * Node client pool (child process): C concurrent loops, each opening a new TLS connection, sending
 * one HTTP/1.1 request with `Connection: close` and reading the response to the end, until N
 * requests have been started. The fallback load generator when h2load is missing, and the only one
 * that can cap the version at TLS 1.2 or count resumptions on the client side.
 *
 * argv[2]: JSON {url, n, c, maxVersion?, ciphers?, resume?, groups?}. Prints one JSON line {succeeded, failed,
 * resumed, seconds, cpuMs, protocol, cipher}. `maxVersion: 'TLSv1.2'` (with `ciphers`, an OpenSSL
 * TLS 1.2 cipher list) drives TLS 1.2 handshakes. Without `resume` no session is ever offered, so
 * every handshake is full; with `resume` each loop offers the newest session (ticket) it received
 * on its previous connection, so all but the first connection of each loop can resume, and
 * `resumed` counts the connections the server actually resumed (`TLSSocket.isSessionReused()`).
 */
import * as tls from 'node:tls';

interface Args {
  url: string;
  n: number;
  c: number;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  ciphers?: string;
  resume?: boolean;
  /** OpenSSL group list to offer (`ecdhCurve`), e.g. "X25519MLKEM768" or "X25519"; default: Node's. */
  groups?: string;
}

interface State {
  protocol?: string;
  cipher?: string;
  resumed: number;
}

/** One connection; resolves with whether it got a 200, and the session to offer next (resume mode). */
function once(u: URL, a: Args, state: State, session: Buffer | undefined): Promise<{ ok: boolean; session?: Buffer }> {
  return new Promise((resolve) => {
    let ok = false;
    let next = session;
    const tls12 = a.maxVersion === 'TLSv1.2';
    const socket = tls.connect({
      host: u.hostname,
      port: Number(u.port),
      rejectUnauthorized: false,
      minVersion: tls12 ? 'TLSv1.2' : 'TLSv1.3',
      maxVersion: tls12 ? 'TLSv1.2' : 'TLSv1.3',
      ...(a.ciphers ? { ciphers: a.ciphers } : {}),
      ...(session ? { session } : {}),
      ...(a.groups ? { ecdhCurve: a.groups } : {}),
      ALPNProtocols: ['http/1.1'],
    });
    // TLS 1.3 tickets arrive after the handshake; TLS 1.2 ones within it. Keep the newest.
    if (a.resume) socket.on('session', (s: Buffer) => (next = s));
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('secureConnect', () => {
      state.protocol ??= socket.getProtocol() ?? undefined;
      state.cipher ??= socket.getCipher()?.standardName;
      if (socket.isSessionReused()) state.resumed++;
      socket.write(`GET ${u.pathname} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      if (!ok && d.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) ok = true;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ ok, session: ok ? next : undefined }));
  });
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]) as Args;
  const u = new URL(a.url);
  const state: State = { resumed: 0 };
  let started = 0;
  let succeeded = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = async (): Promise<void> => {
    let session: Buffer | undefined;
    while (started < a.n) {
      started++;
      const r = await once(u, a, state, a.resume ? session : undefined);
      session = r.session;
      if (r.ok) succeeded++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(a.c, a.n) }, loop));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `${JSON.stringify({ succeeded, failed, resumed: state.resumed, seconds, cpuMs: (cpu.user + cpu.system) / 1000, protocol: state.protocol, cipher: state.cipher })}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`node-loadgen: ${String(e)}\n`);
  process.exit(1);
});
