/**
 * PROXY protocol version 2, receiving side (haproxy's proxy-protocol spec §2.2): the Network Load
 * Balancer prefixes each connection with a binary header carrying the client's address. We read it
 * before any TLS byte, take the source address, and hand the remaining bytes to the TLS engine.
 * A LOCAL command (health checks) carries no address. Anything malformed closes the connection.
 */
import type { Socket } from 'node:net';

/** The 12-byte signature that starts every v2 header. */
export const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
/** Fixed part: signature, version/command, family/protocol, address length. */
const FIXED = 16;
/** Largest header we accept (addresses + TLVs); NLB sends far less. */
const MAX_HEADER = 16 + 536;

export interface ProxyHeader {
  /** Client address and port, absent for LOCAL connections and unknown families. */
  source?: { address: string; port: number };
  /** Bytes that followed the header (the start of the TLS stream). */
  rest: Buffer;
}

export class ProxyProtocolError extends Error {
  override name = 'ProxyProtocolError';
}

function ipv6(b: Buffer): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(i).toString(16));
  return parts.join(':'); // full (uncompressed) form: valid, and unambiguous
}

/** Parses a complete header from `buf`, or returns null when more bytes are needed. */
export function parseProxyV2(buf: Buffer): ProxyHeader | null {
  const have = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  if (!buf.subarray(0, have).equals(PROXY_V2_SIGNATURE.subarray(0, have))) throw new ProxyProtocolError('connection does not start with a PROXY v2 header');
  if (buf.length < FIXED) return null;
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError(`unsupported PROXY protocol version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) throw new ProxyProtocolError(`unknown PROXY command ${command}`);
  const len = buf.readUInt16BE(14);
  if (FIXED + len > MAX_HEADER) throw new ProxyProtocolError('PROXY header too long');
  if (buf.length < FIXED + len) return null;
  const body = buf.subarray(FIXED, FIXED + len);
  const rest = buf.subarray(FIXED + len);
  if (command === 0) return { rest }; // LOCAL: the balancer's own connection (health check)
  const family = buf[13] >> 4;
  // AF_INET: src(4) dst(4) sport(2) dport(2); AF_INET6: src(16) dst(16) sport(2) dport(2).
  if (family === 1 && body.length >= 12) {
    return { source: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) }, rest };
  }
  if (family === 2 && body.length >= 36) {
    return { source: { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32) }, rest };
  }
  return { rest }; // AF_UNSPEC or AF_UNIX: no usable address
}

/** Reads the header off a fresh socket within `timeoutMs`. Rejects on malformed input or timeout. */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error, header?: ProxyHeader): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      if (err) reject(err);
      else resolve(header!);
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      try {
        const header = parseProxyV2(buf);
        if (header) {
          socket.pause();
          done(undefined, header);
        }
      } catch (e) {
        done(e as Error);
      }
    };
    const onEnd = (): void => done(new ProxyProtocolError('connection closed before the PROXY header was complete'));
    const timer = setTimeout(() => done(new ProxyProtocolError('no PROXY header in time')), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
  });
}
