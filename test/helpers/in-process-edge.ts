/**
 * The real edge assembly (`startEdge`) in the test process, in front of the real key-service handler
 * (file keys, static ticket keys) behind a local Lambda-invoke endpoint that counts every invocation
 * by operation — the key-service side of the story — and a tiny HTTP origin.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { parseEdgeConfig } from '../../edge-proxy/src/config';
import { startEdge, type RunningEdge } from '../../edge-proxy/src/edge';
import { createLocalHandler } from '../../local/lambda/local-key-service';
import { epochOf, type TicketKeySource } from '../../lambdas/key-service/ticket-keys';
import { startLocalLambda, type LocalLambda } from '../../local/lambda';
import { makeTestPki, type TestPki } from './certs';
import { recordingLogger } from './recording-logger';

const FUNCTION = 'keyless-key-service';

export interface InProcessEdge {
  edge: RunningEdge;
  pki: TestPki;
  /** Every key-service invocation: operation and arrival time (ms, performance.now()). */
  invocations: Array<{ op: string; at: number }>;
  logs: Array<Record<string, unknown>>;
  port: number;
  stop(): Promise<void>;
}

const staticTicketKeys: TicketKeySource = {
  epochSeconds: 3600,
  get() {
    const epoch = epochOf(Date.now(), 3600);
    const key = (e: number) => crypto.createHash('sha256').update(`test ticket key ${e}`).digest();
    return Promise.resolve({
      epochSeconds: 3600,
      current: { epoch, key: key(epoch) },
      previous: { epoch: epoch - 1, key: key(epoch - 1) },
      backendMs: 0,
    });
  },
};

export async function startInProcessEdge(extra: Record<string, unknown> = {}): Promise<InProcessEdge> {
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const pki = makeTestPki();
  const leaf = pki.leaf('web', 'p256', ['localhost']);
  const chainFile = path.join(pki.dir, 'web-chain.pem');
  fs.writeFileSync(chainFile, leaf.chainPem);
  const handler = createLocalHandler({
    keys: [{ name: 'web', custody: 'file', path: leaf.keyPath }],
    ticketKeys: staticTicketKeys,
    logger: () => undefined,
  });
  const invocations: InProcessEdge['invocations'] = [];
  const lambda: LocalLambda = await startLocalLambda({
    port: 0,
    functions: {
      [FUNCTION]: (event, context) => {
        invocations.push({ op: String((event as { op?: unknown }).op), at: performance.now() });
        return handler(event, context);
      },
    },
  });
  const origin = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10' });
    res.end('origin-ok\n');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const logs: Array<Record<string, unknown>> = [];
  const config = parseEdgeConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    certificates: [{ chainFile, keyName: 'web', hostnames: ['localhost'] }],
    keyServices: [{ functionName: FUNCTION, region: 'us-east-1', endpoint: `http://127.0.0.1:${lambda.port}` }],
    origin: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
    alpn: ['http/1.1'],
    handshakeTimeoutMs: 5000,
    ...extra,
  });
  const edge = await startEdge(config, recordingLogger(logs));
  return {
    edge,
    pki,
    invocations,
    logs,
    port: edge.tlsPort,
    async stop() {
      await edge.close();
      await lambda.close();
      await new Promise<void>((r) => origin.close(() => r()));
      pki.cleanup();
    },
  };
}

export interface HandshakeOutcome {
  ok: boolean;
  error?: string;
  resumed?: boolean;
  session?: Buffer;
  protocol?: string | null;
}

/**
 * One TLS connection to the edge: handshake, then (when `request`) one HTTP/1.1 request; waits for a
 * TLS 1.3 session ticket when it gets a response. Never hangs: 5 s backstop.
 */
export function connectOnce(
  port: number,
  caPem: string,
  opts: { session?: Buffer; request?: boolean; maxVersion?: tls.SecureVersion; localAddress?: string } = {},
): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: caPem,
      ALPNProtocols: ['http/1.1'],
      session: opts.session,
      maxVersion: opts.maxVersion,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    let session: Buffer | undefined;
    let settled = false;
    const done = (r: HandshakeOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ...r, session: session ?? r.session });
    };
    const timer = setTimeout(() => done({ ok: false, error: 'client timeout' }), 5000);
    s.on('session', (sess: Buffer) => (session = sess));
    s.once('error', (e) => done({ ok: false, error: e.message }));
    let established: HandshakeOutcome | undefined;
    let answered = false;
    s.once('close', () =>
      done(established && (answered || !opts.request) ? established : { ok: false, error: 'closed' }),
    );
    s.once('secureConnect', () => {
      const base = { ok: true, resumed: s.isSessionReused(), protocol: s.getProtocol() };
      established = base;
      if (!opts.request) {
        // Give a TLS 1.3 ticket a moment to arrive after the handshake.
        setTimeout(() => done(base), 20);
        return;
      }
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('origin-ok')) {
          answered = true;
          done(base);
        }
      });
      s.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
  });
}
