/**
 * TLS clients of the rehearsal: one handshake (optionally resuming a session), a loop that keeps
 * connecting while the operator works, and the real curl / openssl peers when installed.
 */
import { execFile } from 'node:child_process';
import * as tls from 'node:tls';

export interface Handshake {
  ok: boolean;
  error?: string;
  reused: boolean;
  session?: Buffer;
  /** SHA-256 fingerprint of the leaf certificate served. */
  leaf?: string;
}

export function handshake(
  port: number,
  servername: string,
  ca: string,
  session?: Buffer,
  timeoutMs = 15_000,
  extra: tls.ConnectionOptions = {},
): Promise<Handshake> {
  return new Promise((resolve) => {
    let settled = false;
    let ticket: Buffer | undefined;
    const done = (h: Handshake): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(h);
    };
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca, session, minVersion: 'TLSv1.2', ...extra });
    const timer = setTimeout(() => done({ ok: false, error: 'timeout', reused: false }), timeoutMs);
    socket.on('session', (s: Buffer) => {
      ticket = s;
    });
    socket.once('secureConnect', () => {
      const leaf = socket.getPeerCertificate().fingerprint256;
      const reused = socket.isSessionReused();
      // TLS 1.3 tickets arrive after the handshake: wait for one (briefly) so it can be resumed elsewhere.
      socket.write('GET / HTTP/1.1\r\nHost: ' + servername + '\r\nConnection: close\r\n\r\n');
      // Wait for the ticket (sent after the handshake in TLS 1.3), briefly: a resumed session gets none needed.
      const finish = (): void => {
        if (ticket || reused) return done({ ok: true, reused, session: ticket, leaf });
        const wait = setInterval(() => {
          if (ticket || socket.destroyed) {
            clearInterval(wait);
            done({ ok: true, reused, session: ticket, leaf });
          }
        }, 20);
        setTimeout(() => {
          clearInterval(wait);
          done({ ok: true, reused, session: ticket, leaf });
        }, 3000);
      };
      socket.once('data', finish);
      socket.once('end', finish);
    });
    socket.on('error', (e) => done({ ok: false, error: e.message, reused: false }));
  });
}

export interface ClientLoop {
  /** The leaf certificate of the latest successful handshake. */
  latestLeaf(): string | undefined;
  stop(): Promise<{ ok: number; failed: number; errors: { at: number; error: string }[]; leaves: Set<string> }>;
}

/**
 * Full handshakes (no resumption, so each one needs the key service) every `intervalMs` until
 * stopped: paced under the task's share of the fleet KMS budget, which admission control enforces.
 */
export function clientLoop(port: number, servername: string, ca: string, intervalMs: number): ClientLoop {
  let running = true;
  let latest: string | undefined;
  const stats = { ok: 0, failed: 0, errors: [] as { at: number; error: string }[], leaves: new Set<string>() };
  const loop = (async () => {
    while (running) {
      const h = await handshake(port, servername, ca);
      if (h.ok) {
        stats.ok++;
        if (h.leaf) stats.leaves.add(h.leaf);
        latest = h.leaf;
      } else {
        stats.failed++;
        stats.errors.push({
          at: Date.now(),
          error: (h.error ?? 'failed')
            .replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[a-z0-9_]+:/, '')
            .replace(/:\.\.\/deps.*$/s, ''),
        });
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    latestLeaf: () => latest,
    stop: async () => {
      running = false;
      await loop;
      return stats;
    },
  };
}

/** Runs a peer binary; resolves undefined when it is not installed. */
export function runPeer(cmd: string, args: string[], input = ''): Promise<{ code: number; out: string } | undefined> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
    child.stdin?.end(input);
  });
}
