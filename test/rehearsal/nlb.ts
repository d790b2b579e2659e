/**
 * The Network Load Balancer, locally: a TCP listener that spreads connections over registered
 * targets (round robin) and, as the target group's `proxy_protocol_v2.enabled` attribute says, opens
 * each with a PROXY protocol v2 header carrying the client's address (RFC-style binary header of the
 * HAProxy PROXY protocol specification, section 2.2).
 */
import * as net from 'node:net';

import { PROXY_V2_SIGNATURE } from '../../edge-proxy/src/proxy/proxy-protocol-v2';

export interface LocalNlb {
  port: number;
  targets: { port: number }[];
  /** Connections that found no target or whose target refused. */
  refused: number;
  close(): Promise<void>;
}

export function proxyV2Header(
  src: net.AddressInfo | { address: string; port: number },
  dst: { address: string; port: number },
): Buffer {
  const ip4 = (a: string): Buffer =>
    Buffer.from((a.replace(/^::ffff:/, '') === '::1' ? '127.0.0.1' : a.replace(/^::ffff:/, '')).split('.').map(Number));
  const body = Buffer.alloc(12);
  ip4(src.address).copy(body, 0);
  ip4(dst.address).copy(body, 4);
  body.writeUInt16BE(src.port, 8);
  body.writeUInt16BE(dst.port, 10);
  const head = Buffer.alloc(4);
  head[0] = 0x21; // version 2, PROXY
  head[1] = 0x11; // TCP over IPv4
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, head, body]);
}

export async function startLocalNlb(opts: { proxyProtocol: boolean }): Promise<LocalNlb> {
  let next = 0;
  const nlb: LocalNlb = { port: 0, targets: [], refused: 0, close: async () => undefined };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    const target = nlb.targets.length > 0 ? nlb.targets[next++ % nlb.targets.length] : undefined;
    if (!target) {
      nlb.refused++;
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      if (opts.proxyProtocol)
        upstream.write(
          proxyV2Header(
            { address: client.remoteAddress ?? '127.0.0.1', port: client.remotePort ?? 0 },
            { address: '127.0.0.1', port: nlb.port },
          ),
        );
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', () => {
      nlb.refused++;
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  nlb.port = (server.address() as net.AddressInfo).port;
  nlb.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return nlb;
}
