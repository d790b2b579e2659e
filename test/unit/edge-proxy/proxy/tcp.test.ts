/**
 * Raw TCP forwarding (`proxy.mode: "tcp"`) through the real edge assembly, in process: our TLS engine
 * in front of a TCP origin that parses the PROXY v2 header the edge sends. Data both ways with Node's
 * TLS client and `openssl s_client`, an 8 MiB echo with integrity check, half-close in both
 * directions, origin down, idle timeout, and what the PROXY header says about the client.
 */
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { encodeProxyV2 } from '../../../../edge-proxy/src/proxy/proxy-protocol-v2';
import { deadPort, patternStream } from '../../../helpers/proxy';
import { startInProcessEdge, type InProcessEdge } from '../../../helpers/in-process-edge';
import { havePeer, runPeer } from '../../../helpers/peers';
import { startProxyOrigin, tlsFacts, type ProxyOrigin } from '../../../helpers/proxy-origin';

interface Client {
  socket: tls.TLSSocket;
  /** Everything received, and whether the stream ended cleanly ('end' before 'close', no error). */
  result: Promise<{ data: Buffer; ended: boolean; error?: string }>;
}

/** A TLS client; unless `halfOpen`, it closes its side when the edge closes (close_notify) its own. */
function connect(edge: InProcessEdge, opts: tls.ConnectionOptions = {}, halfOpen = false): Promise<Client> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen (passed on to the TLSSocket, missing from the ConnectionOptions type): the
    // edge's close_notify ends only our readable side.
    const socket = tls.connect({
      host: '127.0.0.1',
      port: edge.port,
      servername: 'localhost',
      ca: edge.pki.caPem,
      allowHalfOpen: true,
      ...opts,
    } as tls.ConnectionOptions);
    const chunks: Buffer[] = [];
    let ended = false;
    let error: string | undefined;
    const result = new Promise<{ data: Buffer; ended: boolean; error?: string }>((done) => {
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('end', () => {
        ended = true;
        if (!halfOpen) socket.end();
      });
      socket.on('error', (e) => (error = e.message));
      socket.on('close', () => done({ data: Buffer.concat(chunks), ended, error }));
    });
    socket.once('secureConnect', () => resolve({ socket, result }));
    socket.once('error', reject);
  });
}

/** Resolves when `socket` has received `text` (or rejects when it closes first). */
function waitFor(socket: tls.TLSSocket, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.includes(text)) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before ${JSON.stringify(text)}; got ${JSON.stringify(got)}`)));
  });
}

const hasOpenssl = havePeer('openssl', 'the close_notify-versus-truncation checks with it are skipped');

/**
 * `openssl s_client` tells a clean close (close_notify: exit 0) from a truncated stream (exit 1,
 * "unexpected eof while reading"), which Node's TLS client does not report.
 */
function opensslClose(edge: InProcessEdge): Promise<{ code: number | null; stderr: string }> {
  return runPeer(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${edge.port}`,
      '-servername',
      'localhost',
      '-CAfile',
      edge.pki.caPath,
      '-ign_eof',
    ],
    { input: 'anyone there?\n', timeoutMs: 20_000 },
  );
}

async function metric(edge: InProcessEdge, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${edge.edge.adminPort}/metrics`);
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l === name);
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('tcp mode with PROXY v2 to the origin', () => {
  let origin: ProxyOrigin;
  let edge: InProcessEdge;

  beforeAll(async () => {
    origin = await startProxyOrigin({ expectHeader: true });
    edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${origin.port}`,
      proxy: { mode: 'tcp', sendProxyProtocol: true },
      alpn: undefined,
    });
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  test('data both ways with Node TLS; the header names the client, SNI, TLS version and cipher', async () => {
    origin.behaviour = 'echo';
    const seen = origin.nextConnection();
    // The client offers ALPN; the edge offers none in tcp mode, so none is negotiated (no alert).
    const c = await connect(edge, { ALPNProtocols: ['h2', 'http/1.1'] });
    expect(c.socket.alpnProtocol).toBe(false);
    const echoed = waitFor(c.socket, 'ping 1\nping 2\n');
    c.socket.write('ping 1\n');
    c.socket.write('ping 2\n');
    await echoed;
    const conn = await seen;
    const h = conn.header!;
    expect(h.source).toEqual({ address: '127.0.0.1', port: c.socket.localPort });
    expect(h.destination).toEqual({ address: '127.0.0.1', port: edge.port });
    const facts = tlsFacts(h);
    expect(facts.authority).toBe('localhost');
    expect(facts.alpn).toBeUndefined();
    expect(facts.sslClient! & 0x01).toBe(0x01);
    expect(facts.sslVerify).not.toBe(0);
    expect(facts.version).toBe('TLSv1.3');
    expect(facts.cipher).toBe(c.socket.getCipher().name);
    c.socket.end();
    const r = await c.result;
    expect(r.data.toString()).toBe('ping 1\nping 2\n');
    expect(r.ended).toBe(true);
  });

  test('TLS 1.2: the header carries TLSv1.2 and the OpenSSL cipher name', async () => {
    origin.behaviour = 'line';
    const seen = origin.nextConnection();
    const c = await connect(edge, { maxVersion: 'TLSv1.2' });
    const cipher = c.socket.getCipher().name;
    c.socket.write('hello\n');
    const r = await c.result;
    expect(r.data.toString()).toBe('echo: hello\n');
    expect(r.ended).toBe(true);
    const facts = tlsFacts((await seen).header);
    expect(facts.version).toBe('TLSv1.2');
    expect(facts.cipher).toBe(cipher);
    expect(facts.cipher).toMatch(/^ECDHE-ECDSA-/);
  });

  test('8 MiB echoed intact, with backpressure, then the client half-closes', async () => {
    origin.behaviour = 'echo';
    const total = 8 * 1024 * 1024;
    const before = await metric(edge, 'keyless_edge_tcp_bytes_total{direction="to_origin"}');
    const c = await connect(edge);
    const sent = createHash('sha256');
    const source = patternStream(total);
    source.on('data', (d: Buffer) => sent.update(d));
    source.pipe(c.socket); // ends the client's side (close_notify) when all is written
    const r = await c.result;
    expect(r.error).toBeUndefined();
    expect(r.ended).toBe(true);
    expect(r.data.length).toBe(total);
    expect(createHash('sha256').update(r.data).digest('hex')).toBe(sent.digest('hex'));
    expect(await metric(edge, 'keyless_edge_tcp_bytes_total{direction="to_origin"}')).toBeGreaterThanOrEqual(
      before + total,
    );
    expect(await metric(edge, 'keyless_edge_tcp_bytes_total{direction="to_client"}')).toBeGreaterThanOrEqual(total);
  });

  test('origin half-close: its FIN reaches the client as close_notify, the client can still send', async () => {
    origin.behaviour = 'greet';
    const seen = origin.nextConnection();
    const c = await connect(edge, {}, true);
    const ended = new Promise<void>((r) => c.socket.once('end', () => r()));
    await ended;
    // Our side towards the origin is still open: what the client sends now arrives.
    c.socket.end('after your FIN\n');
    const conn = await seen;
    await conn.ended;
    expect(Buffer.concat(conn.received).toString()).toBe('after your FIN\n');
    const r = await c.result;
    expect(r.data.toString()).toBe('hello from origin\n');
  });

  test('client half-close: close_notify ends the origin side, the answer still arrives', async () => {
    origin.behaviour = 'echo';
    const seen = origin.nextConnection();
    const c = await connect(edge);
    c.socket.end('last words\n'); // close_notify right after the data
    const conn = await seen;
    await conn.ended; // the origin saw our FIN
    const r = await c.result;
    expect(r.data.toString()).toBe('last words\n');
    expect(r.ended).toBe(true);
  });

  const opensslIt = hasOpenssl ? test : test.skip;
  opensslIt('openssl s_client: a line there and back', async () => {
    origin.behaviour = 'line';
    const seen = origin.nextConnection();
    const r = await runPeer(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${edge.port}`,
        '-servername',
        'localhost',
        '-CAfile',
        edge.pki.caPath,
        '-quiet',
        '-ign_eof',
        '-alpn',
        'imap',
      ],
      {
        input: 'from openssl\n',
        timeoutMs: 20_000,
      },
    );
    expect(r.stdout).toContain('echo: from openssl');
    const facts = tlsFacts((await seen).header);
    expect(facts.authority).toBe('localhost');
    expect(facts.version).toBe('TLSv1.3');
  });
});

describe('tcp mode: ALPN, origin failures and timeouts', () => {
  test('a configured ALPN protocol is negotiated and sent in PP2_TYPE_ALPN', async () => {
    const origin = await startProxyOrigin({ expectHeader: true, behaviour: 'line' });
    const edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${origin.port}`,
      proxy: { mode: 'tcp', sendProxyProtocol: true },
      alpn: ['imap'],
    });
    try {
      const seen = origin.nextConnection();
      const c = await connect(edge, { ALPNProtocols: ['h2', 'imap'] });
      expect(c.socket.alpnProtocol).toBe('imap');
      c.socket.write('a1 NOOP\n');
      expect((await c.result).data.toString()).toBe('echo: a1 NOOP\n');
      expect(tlsFacts((await seen).header).alpn).toBe('imap');
    } finally {
      await edge.stop();
      await origin.close();
    }
  });

  test('behind an NLB (PROXY v2 accepted): the origin is told the address from the NLB header', async () => {
    const origin = await startProxyOrigin({ expectHeader: true, behaviour: 'line' });
    const edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${origin.port}`,
      proxy: { mode: 'tcp', sendProxyProtocol: true },
      alpn: undefined,
      proxyProtocol: true,
    });
    try {
      const seen = origin.nextConnection();
      const raw = net.connect(edge.port, '127.0.0.1');
      await new Promise((r) => raw.once('connect', r));
      // What the NLB would send: the client 203.0.113.9:40000 connected to the listener 192.0.2.80:443.
      raw.write(
        encodeProxyV2({
          source: { address: '203.0.113.9', port: 40000 },
          destination: { address: '192.0.2.80', port: 443 },
        }),
      );
      const s = tls.connect({ socket: raw, servername: 'localhost', ca: edge.pki.caPem });
      await new Promise((r) => s.once('secureConnect', r));
      s.write('via nlb\n');
      const text = await new Promise<string>((resolve) => {
        let t = '';
        s.on('data', (d: Buffer) => (t += d.toString()));
        s.on('end', () => resolve(t));
      });
      s.destroy();
      expect(text).toBe('echo: via nlb\n');
      const h = (await seen).header!;
      expect(h.source).toEqual({ address: '203.0.113.9', port: 40000 });
      expect(h.destination).toEqual({ address: '192.0.2.80', port: 443 });
      expect(tlsFacts(h).authority).toBe('localhost');
    } finally {
      await edge.stop();
      await origin.close();
    }
  });

  test('without sendProxyProtocol the origin gets the plaintext only', async () => {
    const origin = await startProxyOrigin({ expectHeader: false, behaviour: 'line' });
    const edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${origin.port}`,
      proxy: { mode: 'tcp' },
      alpn: undefined,
    });
    try {
      const seen = origin.nextConnection();
      const c = await connect(edge);
      c.socket.write('plain\n');
      expect((await c.result).data.toString()).toBe('echo: plain\n');
      expect(Buffer.concat((await seen).received).toString()).toBe('plain\n');
    } finally {
      await edge.stop();
      await origin.close();
    }
  });

  test('origin down: the client gets close_notify, the failure is counted, the edge keeps serving', async () => {
    const port = await deadPort();
    const edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${port}`,
      proxy: { mode: 'tcp' },
      alpn: undefined,
    });
    try {
      for (let i = 0; i < 2; i++) {
        const c = await connect(edge);
        c.socket.write('anyone there?\n');
        const r = await c.result;
        expect(r.error).toBeUndefined();
        expect(r.ended).toBe(true);
        expect(r.data.length).toBe(0);
      }
      expect(await metric(edge, 'keyless_edge_tcp_origin_connect_failures_total{reason="refused"}')).toBe(2);
      expect(await metric(edge, 'keyless_edge_tcp_connections_total{result="connect_failed"}')).toBe(2);
      expect(edge.logs.filter((l) => l.msg === 'proxy: origin connect failed')).toHaveLength(2);
      if (hasOpenssl) {
        const o = await opensslClose(edge);
        expect(o.stderr).not.toMatch(/unexpected eof/);
        expect(o.code).toBe(0);
      }
    } finally {
      await edge.stop();
    }
  });

  test('backpressure: a client that stops reading stalls the origin; nothing piles up in the edge', async () => {
    const total = 64 * 1024 * 1024;
    let accepted = 0; // bytes the origin's socket took (write() returned or drained)
    let sentSha = '';
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      const source = patternStream(total);
      const hash = createHash('sha256');
      source.on('data', (d: Buffer) => {
        hash.update(d);
        if (!s.write(d, () => (accepted += d.length))) source.pause();
      });
      s.on('drain', () => source.resume());
      source.on('end', () => {
        sentSha = hash.digest('hex');
        s.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
      proxy: { mode: 'tcp' },
      alpn: undefined,
    });
    try {
      const c = await connect(edge);
      c.socket.pause();
      // Wait until the origin is stalled: its accepted count stops moving (polled, no fixed deadline).
      let last = -1;
      let still = 0;
      while (still < 5) {
        await new Promise((r) => setTimeout(r, 100));
        still = accepted === last ? still + 1 : 0;
        last = accepted;
      }
      // Kernel socket buffers on both hops plus the streams' high-water marks: well under half.
      expect(accepted).toBeLessThan(total / 2);
      const hash = createHash('sha256');
      let received = 0;
      c.socket.on('data', (d: Buffer) => {
        hash.update(d);
        received += d.length;
      });
      c.socket.resume();
      const r = await c.result;
      expect(r.ended).toBe(true);
      expect(received).toBe(total);
      expect(hash.digest('hex')).toBe(sentSha);
      process.stdout.write(
        `[proxy-tcp] origin stalled after ${(last / 1048576).toFixed(1)} MiB of ${total / 1048576} MiB while the client read nothing\n`,
      );
    } finally {
      await edge.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('drain (SIGTERM): an open tunnel keeps working until its client is done, then the drain ends', async () => {
    const origin = await startProxyOrigin({ expectHeader: false, behaviour: 'echo' });
    const edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${origin.port}`,
      proxy: { mode: 'tcp' },
      alpn: undefined,
    });
    try {
      const c = await connect(edge);
      let drained = false;
      const drain = edge.edge.drain(30_000).then(() => (drained = true));
      const echoed = waitFor(c.socket, 'still here\n');
      c.socket.write('still here\n');
      await echoed;
      expect(drained).toBe(false);
      c.socket.end();
      await drain;
      expect((await c.result).data.toString()).toBe('still here\n');
      expect(edge.logs.find((l) => l.msg === 'drained')?.forciblyClosed).toBe(0);
    } finally {
      await edge.stop();
      await origin.close();
    }
  });

  test('idle timeout closes a tunnel with no traffic either way', async () => {
    const origin = await startProxyOrigin({ expectHeader: false, behaviour: 'echo' });
    const edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${origin.port}`,
      proxy: { mode: 'tcp', idleTimeoutMs: 300 },
      alpn: undefined,
    });
    try {
      const seen = origin.nextConnection();
      const c = await connect(edge);
      c.socket.write('x');
      await waitFor(c.socket, 'x');
      const conn = await seen;
      // Both sides are closed by the edge once nothing moves (no fixed sleep: wait for the closes).
      await conn.ended;
      await c.result;
      expect(edge.logs.some((l) => l.msg === 'proxy: tcp idle timeout')).toBe(true);
    } finally {
      await edge.stop();
      await origin.close();
    }
  });

  test('a connection accepted by the origin but reset mid-stream is cut, not closed cleanly', async () => {
    const server = net.createServer((s) => {
      s.once('data', () => s.resetAndDestroy());
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const edge = await startInProcessEdge({
      origin: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
      proxy: { mode: 'tcp' },
      alpn: undefined,
    });
    try {
      const c = await connect(edge);
      c.socket.write('boom\n');
      const r = await c.result;
      expect(r.data.length).toBe(0);
      expect(edge.logs.some((l) => l.msg === 'proxy: origin connect failed')).toBe(false);
      if (hasOpenssl) {
        // No close_notify: the client sees a truncated stream, not a complete one.
        const o = await opensslClose(edge);
        expect(o.stderr).toMatch(/unexpected eof while reading/);
        expect(o.code).not.toBe(0);
      }
    } finally {
      await edge.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
