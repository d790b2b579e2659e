/**
 * A TCP origin for the tcp-mode and PROXY-protocol tests: reads the PROXY v2 header the edge sends
 * (when told to expect one), records it with everything the connection carried, and then behaves as
 * the test asks: echo, answer one line, or greet and half-close.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  decodeProxySsl,
  parseProxyV2,
  PP2_SUBTYPE_SSL,
  PP2_TYPE,
  type ProxyHeader,
} from '../../edge-proxy/src/proxy/proxy-protocol-v2';

export type OriginBehaviour =
  /** Send back every byte; end after the client's end. */
  | 'echo'
  /** Answer the first line with `echo: <line>` and close. */
  | 'line'
  /** Send `hello from origin\n` and half-close at once; keep reading until the client ends. */
  | 'greet';

export interface OriginConnection {
  header?: ProxyHeader;
  /** Bytes after the header (all of them for 'greet' and 'line'; echo mode records too). */
  received: Buffer[];
  /** Resolves when the edge ended its side (FIN) — or the socket closed. */
  ended: Promise<void>;
}

export interface ProxyOrigin {
  port: number;
  connections: OriginConnection[];
  behaviour: OriginBehaviour;
  /** The next connection (resolves once its header, if expected, has been read). */
  nextConnection(): Promise<OriginConnection>;
  close(): Promise<void>;
}

/** What the header says about the client's TLS connection, decoded from its TLVs. */
export interface TlsFacts {
  alpn?: string;
  authority?: string;
  sslClient?: number;
  sslVerify?: number;
  version?: string;
  cipher?: string;
}

export function tlsFacts(h: ProxyHeader | undefined): TlsFacts {
  const out: TlsFacts = {};
  for (const t of h?.tlvs ?? []) {
    if (t.type === PP2_TYPE.ALPN) out.alpn = t.value.toString();
    if (t.type === PP2_TYPE.AUTHORITY) out.authority = t.value.toString();
    if (t.type === PP2_TYPE.SSL) {
      const ssl = decodeProxySsl(t.value);
      out.sslClient = ssl.client;
      out.sslVerify = ssl.verify;
      for (const s of ssl.tlvs) {
        if (s.type === PP2_SUBTYPE_SSL.VERSION) out.version = s.value.toString();
        if (s.type === PP2_SUBTYPE_SSL.CIPHER) out.cipher = s.value.toString();
      }
    }
  }
  return out;
}

export async function startProxyOrigin(opts: {
  expectHeader: boolean;
  behaviour?: OriginBehaviour;
}): Promise<ProxyOrigin> {
  const connections: OriginConnection[] = [];
  const waiting: Array<(c: OriginConnection) => void> = [];
  const sockets = new Set<net.Socket>();
  const origin: ProxyOrigin = {
    port: 0,
    connections,
    behaviour: opts.behaviour ?? 'echo',
    nextConnection: () => new Promise((resolve) => waiting.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    const behaviour = origin.behaviour;
    let endedResolve!: () => void;
    const conn: OriginConnection = { received: [], ended: new Promise((r) => (endedResolve = r)) };
    socket.once('end', () => endedResolve());
    socket.once('close', () => endedResolve());
    const start = (rest: Buffer): void => {
      connections.push(conn);
      waiting.shift()?.(conn);
      if (behaviour === 'echo') {
        if (rest.length) {
          conn.received.push(rest);
          socket.write(rest);
        }
        socket.on('data', (d: Buffer) => conn.received.push(d));
        socket.pipe(socket);
        return;
      }
      if (behaviour === 'greet') {
        socket.end('hello from origin\n');
        if (rest.length) conn.received.push(rest);
        socket.on('data', (d: Buffer) => conn.received.push(d));
        return;
      }
      let text = rest.toString();
      const answer = (): boolean => {
        const nl = text.indexOf('\n');
        if (nl < 0) return false;
        socket.end(`echo: ${text.slice(0, nl)}\n`);
        return true;
      };
      if (rest.length) conn.received.push(rest);
      if (answer()) return;
      socket.on('data', (d: Buffer) => {
        conn.received.push(d);
        text += d.toString();
        answer();
      });
    };
    if (!opts.expectHeader) {
      start(Buffer.alloc(0));
      return;
    }
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      let h: ProxyHeader | null;
      try {
        h = parseProxyV2(buf);
      } catch {
        socket.destroy();
        return;
      }
      if (!h) return;
      socket.off('data', onData);
      conn.header = h;
      start(h.rest);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin.port = (server.address() as AddressInfo).port;
  return origin;
}
