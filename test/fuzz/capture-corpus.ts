/**
 * Regenerates the seed corpus: real ClientHellos (first flights) from OpenSSL s_client, GnuTLS,
 * Go crypto/tls, headless Chromium (BoringSSL), curl, Node and Python. A tiny TCP listener records
 * each client's bytes until one complete ClientHello has arrived, then hangs up; the bytes are stored
 * as test/fuzz/corpus/client-hello/<peer>-<variant>.bin. ClientHellos are public data (random,
 * key shares of throwaway ephemeral keys, cipher lists), so committing them is fine.
 *
 *   npm run build && node dist/test/fuzz/capture-corpus.js
 *
 * A peer that is not installed is skipped with a message; existing files for it are kept.
 *
 * It also records whole client flights (corpus/flights/): Node's TLS client through a recording
 * proxy against the engine itself (test PKI made at run time, in-process key double) — full TLS 1.3,
 * TLS 1.3 resumption with a ticket, TLS 1.2 ECDHE, TLS 1.2 RSA key exchange and TLS 1.2 resumption.
 * Replayed, their second flights cannot authenticate (fresh server randoms), but they carry the
 * fuzzer past the ClientHello: PSK binders, ClientKeyExchange, CCS, encrypted Finished.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { chromiumDumpDom, CHROMIUM } from '../helpers/chromium';
import { buildGoProbe } from '../helpers/go-probe';
import { havePeer, runPeer } from '../helpers/peers';
import { corpusDir, serverFixture } from './targets';
import { TlsServer } from '../../edge-proxy/src/tls/server';

/** Bytes of the first flight once a whole ClientHello message is in, or undefined while incomplete. */
function completeHello(buf: Buffer): Buffer | undefined {
  let hs = Buffer.alloc(0);
  let off = 0;
  while (off + 5 <= buf.length) {
    const len = buf.readUInt16BE(off + 3);
    if (off + 5 + len > buf.length) return undefined;
    if (buf[off] !== 22) return buf.subarray(0, off + 5 + len); // not a handshake record: keep as is
    hs = Buffer.concat([hs, buf.subarray(off + 5, off + 5 + len)]);
    off += 5 + len;
    if (hs.length >= 4 && hs.length >= 4 + hs.readUIntBE(1, 3)) return buf.subarray(0, off);
  }
  return undefined;
}

/** Listens once, runs `client(port)`, and returns the first flight it sent. */
async function capture(client: (port: number) => Promise<unknown>): Promise<Buffer | undefined> {
  let resolveHello!: (b: Buffer | undefined) => void;
  const hello = new Promise<Buffer | undefined>((r) => (resolveHello = r));
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const h = completeHello(buf);
      if (h) {
        resolveHello(h);
        sock.destroy();
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const timer = setTimeout(() => resolveHello(undefined), 90_000);
  const clientDone = client(port).catch(() => undefined);
  const result = await hello;
  clearTimeout(timer);
  await clientDone;
  server.close();
  return result;
}

interface Peer {
  name: string;
  available: () => boolean;
  client: (port: number) => Promise<unknown>;
}

function peers(goProbe: string | undefined): Peer[] {
  const ca: string[] = [];
  const py = (extra: string) => (port: number) =>
    runPeer('python3', [
      '-c',
      `import ssl,socket\nctx=ssl.create_default_context()\n${extra}\ntry:\n  ctx.wrap_socket(socket.create_connection(("127.0.0.1",${port})),server_hostname="localhost")\nexcept Exception: pass`,
    ]);
  const nodeClient = (opts: tls.ConnectionOptions) => (port: number) =>
    new Promise<void>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ALPNProtocols: ['h2', 'http/1.1'],
        ...opts,
      });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
  return [
    {
      name: 'openssl-default',
      available: () => havePeer('openssl'),
      client: (p) => runPeer('openssl', ['s_client', '-connect', `127.0.0.1:${p}`, '-servername', 'localhost', ...ca]),
    },
    {
      name: 'openssl-tls12',
      available: () => havePeer('openssl'),
      client: (p) =>
        runPeer('openssl', ['s_client', '-connect', `127.0.0.1:${p}`, '-servername', 'localhost', '-tls1_2']),
    },
    {
      name: 'openssl-hrr',
      available: () => havePeer('openssl'),
      client: (p) =>
        runPeer('openssl', [
          's_client',
          '-connect',
          `127.0.0.1:${p}`,
          '-servername',
          'localhost',
          '-groups',
          'X448:X25519',
        ]),
    },
    {
      name: 'gnutls-default',
      available: () => havePeer('gnutls-cli'),
      client: (p) => runPeer('gnutls-cli', ['-p', String(p), 'localhost', '--insecure']),
    },
    {
      name: 'gnutls-tls12',
      available: () => havePeer('gnutls-cli'),
      client: (p) =>
        runPeer('gnutls-cli', [
          '-p',
          String(p),
          'localhost',
          '--insecure',
          '--priority',
          'NORMAL:-VERS-ALL:+VERS-TLS1.2',
        ]),
    },
    {
      name: 'go-default',
      available: () => goProbe !== undefined,
      client: (p) => runPeer(goProbe!, ['-addr', `127.0.0.1:${p}`, '-ca', '/dev/null']),
    },
    {
      name: 'go-tls12',
      available: () => goProbe !== undefined,
      client: (p) => runPeer(goProbe!, ['-addr', `127.0.0.1:${p}`, '-ca', '/dev/null', '-max', '1.2']),
    },
    {
      name: 'chromium-default',
      available: () => havePeer(CHROMIUM),
      client: (p) => chromiumDumpDom(`https://localhost:${p}/`, { timeoutMs: 60_000 }),
    },
    {
      name: 'chromium-tls12',
      available: () => havePeer(CHROMIUM),
      client: (p) =>
        chromiumDumpDom(`https://localhost:${p}/`, { flags: ['--ssl-version-max=tls1.2'], timeoutMs: 60_000 }),
    },
    {
      name: 'curl-default',
      available: () => havePeer('curl'),
      client: (p) => runPeer('curl', ['-sS', '-k', `https://localhost:${p}/`]),
    },
    {
      name: 'curl-tls12',
      available: () => havePeer('curl'),
      client: (p) => runPeer('curl', ['-sS', '-k', '--tls-max', '1.2', `https://localhost:${p}/`]),
    },
    { name: 'node-default', available: () => true, client: nodeClient({}) },
    { name: 'node-tls12', available: () => true, client: nodeClient({ maxVersion: 'TLSv1.2' }) },
    { name: 'python-default', available: () => havePeer('python3'), client: py('') },
    {
      name: 'python-tls12',
      available: () => havePeer('python3'),
      client: py('ctx.maximum_version = ssl.TLSVersion.TLSv1_2'),
    },
  ];
}

/** Runs one Node TLS client through a recording proxy to `target`; returns the client's bytes. */
async function recordFlight(target: number, opts: tls.ConnectionOptions): Promise<{ bytes: Buffer; session?: Buffer }> {
  const chunks: Buffer[] = [];
  const proxy = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    client.on('data', (d) => {
      chunks.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d) => client.write(d));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as net.AddressInfo).port;
  let session: Buffer | undefined;
  await new Promise<void>((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      ...opts,
    });
    s.on('session', (sess: Buffer) => (session = sess));
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    s.on('data', () => s.end());
    s.on('error', reject);
    s.on('close', () => resolve());
  });
  proxy.close();
  return { bytes: Buffer.concat(chunks), session };
}

async function captureFlights(): Promise<void> {
  const out = path.join(corpusDir(), 'flights');
  fs.mkdirSync(out, { recursive: true });
  const fixture = serverFixture();
  // Ticket keys arrive asynchronously from the key double.
  while (!fixture.ctx.tickets?.ready) await new Promise((r) => setTimeout(r, 10));
  const server = new TlsServer({
    certificates: fixture.ctx.certificates,
    keyOperations: fixture.ctx.keyOperations,
    tickets: fixture.ctx.tickets,
  });
  server.on('secureConnection', (c) => {
    c.on('data', () => c.end('HTTP/1.1 204 No Content\r\n\r\n'));
    c.on('end', () => c.end());
  });
  const port = (await server.listen(0)).port;
  try {
    const save = (name: string, bytes: Buffer): void => {
      fs.writeFileSync(path.join(out, `${name}.bin`), bytes);
      console.log(`flight ${name}: ${bytes.length} bytes`);
    };
    const t13 = await recordFlight(port, { minVersion: 'TLSv1.3' });
    save('tls13-full', t13.bytes);
    if (t13.session)
      save('tls13-resumed', (await recordFlight(port, { minVersion: 'TLSv1.3', session: t13.session })).bytes);
    const t12 = await recordFlight(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    save('tls12-ecdhe', t12.bytes);
    save('tls12-rsa-kx', (await recordFlight(port, { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' })).bytes);
    if (t12.session)
      save(
        'tls12-resumed',
        (
          await recordFlight(port, {
            maxVersion: 'TLSv1.2',
            ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
            session: t12.session,
          })
        ).bytes,
      );
  } finally {
    await server.close(true);
    fixture.pki.cleanup();
  }
}

async function main(): Promise<void> {
  if (process.env.CAPTURE_PEERS !== 'none') await captureHellos();
  await captureFlights();
}

async function captureHellos(): Promise<void> {
  const out = path.join(corpusDir(), 'client-hello');
  fs.mkdirSync(out, { recursive: true });
  const only = (process.env.CAPTURE_PEERS ?? '').split(',').filter(Boolean);
  for (const peer of peers(buildGoProbe())) {
    if (only.length && !only.some((o) => peer.name.startsWith(o))) continue;
    if (!peer.available()) continue;
    const hello = await capture(peer.client);
    if (!hello) {
      console.log(`${peer.name}: no ClientHello captured (kept any previous file)`);
      continue;
    }
    fs.writeFileSync(path.join(out, `${peer.name}.bin`), hello);
    console.log(`${peer.name}: ${hello.length} bytes`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
