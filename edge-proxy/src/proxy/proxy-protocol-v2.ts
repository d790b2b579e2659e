/**
 * PROXY protocol version 2 (haproxy's proxy-protocol spec §2.2), both directions.
 *
 * Receiving: the Network Load Balancer prefixes each connection with a binary header carrying the
 * client's address. We read it before any TLS byte, take the source (and destination) address and
 * the TLVs, and hand the remaining bytes to the TLS engine. A LOCAL command (health checks) carries
 * no address. Anything malformed closes the connection.
 *
 * Sending: `encodeProxyV2` builds the header the edge puts at the start of every origin connection
 * (`proxy.sendProxyProtocol`), with the TLVs of §2.2 that describe the client's TLS connection
 * (`PP2_TYPE_ALPN`, `PP2_TYPE_AUTHORITY`, `PP2_TYPE_SSL` and its sub-TLVs).
 *
 * This module is the wire format only: what the edge's own header says is decided in
 * `origin-proxy-header.ts`; `tls/server.ts` reads the NLB's header with `readProxyHeader`.
 */
import { isIP, type Socket } from 'node:net';

/** The 12-byte signature that starts every v2 header. */
export const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
/** Fixed part: signature, version/command, family/protocol, address length. */
const FIXED = 16;
/** Largest header we accept (addresses + TLVs); NLB sends far less. */
const MAX_HEADER = 16 + 536;

export interface ProxyAddress {
  address: string;
  port: number;
}

/** One Type-Length-Value field after the addresses (§2.2). */
export interface ProxyTlv {
  type: number;
  value: Buffer;
}

export interface ProxyHeader {
  /** Client address and port, absent for LOCAL connections and unknown families. */
  source?: ProxyAddress;
  /** Address and port the client connected to (the balancer's listener), when `source` is present. */
  destination?: ProxyAddress;
  /** TLVs after the addresses, in order (absent when there are none). */
  tlvs?: ProxyTlv[];
  /** Bytes that followed the header (the start of the TLS stream). */
  rest: Buffer;
}

/** TLV types (§2.2). */
export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const;

/** Sub-TLV types inside a `PP2_TYPE_SSL` value (§2.2.5). */
export const PP2_SUBTYPE_SSL = {
  VERSION: 0x21,
  CN: 0x22,
  CIPHER: 0x23,
  SIG_ALG: 0x24,
  KEY_ALG: 0x25,
} as const;

/** Bits of the `client` field of a `PP2_TYPE_SSL` value (§2.2.5). */
export const PP2_CLIENT = { SSL: 0x01, CERT_CONN: 0x02, CERT_SESS: 0x04 } as const;

/** The value of a `PP2_TYPE_SSL` TLV: `client` (u8), `verify` (u32) and sub-TLVs. */
export interface ProxySslInfo {
  client: number;
  /** Zero only when the client presented a certificate and it was verified (§2.2.5). */
  verify: number;
  tlvs: ProxyTlv[];
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
  if (!buf.subarray(0, have).equals(PROXY_V2_SIGNATURE.subarray(0, have)))
    throw new ProxyProtocolError('connection does not start with a PROXY v2 header');
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
  // LOCAL: the balancer's own connection (health check); the receiver ignores the rest (§2.2).
  if (command === 0) return { rest };
  const family = buf[13] >> 4;
  // AF_INET: src(4) dst(4) sport(2) dport(2); AF_INET6: src(16) dst(16) sport(2) dport(2);
  // AF_UNIX: src(108) dst(108). TLVs follow the address block (§2.2).
  const addrLen = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  if (body.length < addrLen) throw new ProxyProtocolError('PROXY header shorter than its address block');
  const tlvs = body.length > addrLen ? decodeProxyTlvs(body.subarray(addrLen)) : undefined;
  const out: ProxyHeader = { rest };
  if (tlvs) out.tlvs = tlvs;
  if (family === 1) {
    out.source = { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) };
    out.destination = { address: [...body.subarray(4, 8)].join('.'), port: body.readUInt16BE(10) };
  } else if (family === 2) {
    out.source = { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32) };
    out.destination = { address: ipv6(body.subarray(16, 32)), port: body.readUInt16BE(34) };
  }
  return out; // AF_UNSPEC or AF_UNIX: no usable address
}

/** Splits a TLV area into its fields; a field running past the end is malformed. */
export function decodeProxyTlvs(buf: Buffer): ProxyTlv[] {
  const out: ProxyTlv[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 3 > buf.length) throw new ProxyProtocolError('truncated PROXY TLV');
    const len = buf.readUInt16BE(off + 1);
    if (off + 3 + len > buf.length) throw new ProxyProtocolError('PROXY TLV longer than the header');
    out.push({ type: buf[off], value: buf.subarray(off + 3, off + 3 + len) });
    off += 3 + len;
  }
  return out;
}

/** Reads the value of a `PP2_TYPE_SSL` TLV. */
export function decodeProxySsl(value: Buffer): ProxySslInfo {
  if (value.length < 5) throw new ProxyProtocolError('PP2_TYPE_SSL value shorter than 5 bytes');
  return { client: value[0], verify: value.readUInt32BE(1), tlvs: decodeProxyTlvs(value.subarray(5)) };
}

// ---- sending ----------------------------------------------------------------------------------

/** Address family and transport byte (§2.2, 14th byte): TCP over IPv4 / IPv6. */
const TCP4 = 0x11;
const TCP6 = 0x21;
/** Version 2, command PROXY (13th byte). */
const V2_PROXY = 0x21;

function encodeTlv(t: ProxyTlv): Buffer {
  if (t.type < 0 || t.type > 0xff || !Number.isInteger(t.type))
    throw new RangeError(`PROXY TLV type ${t.type} is not a byte`);
  if (t.value.length > 0xffff) throw new RangeError('PROXY TLV value longer than 65535 bytes');
  const h = Buffer.alloc(3);
  h[0] = t.type;
  h.writeUInt16BE(t.value.length, 1);
  return Buffer.concat([h, t.value]);
}

/** The value of a `PP2_TYPE_SSL` TLV (§2.2.5): client (u8), verify (u32 big-endian), sub-TLVs. */
export function encodeProxySsl(ssl: ProxySslInfo): Buffer {
  const h = Buffer.alloc(5);
  h[0] = ssl.client;
  h.writeUInt32BE(ssl.verify >>> 0, 1);
  return Buffer.concat([h, ...ssl.tlvs.map(encodeTlv)]);
}

/** `a.b.c.d`, or an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), as 4 bytes; else undefined. */
function ipv4Bytes(address: string): Buffer | undefined {
  const m = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (!m || isIP(m[1]) !== 4) return undefined;
  return Buffer.from(m[1].split('.').map(Number));
}

/** Any textual IPv6 address (compressed, with an embedded IPv4 tail, with a zone) as 16 bytes. */
function ipv6Bytes(address: string): Buffer {
  const addr = address.replace(/%.*$/, ''); // the zone id is local to this host
  if (isIP(addr) !== 6) throw new RangeError(`${JSON.stringify(address)} is not an IP address`);
  let groups: number[] = [];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const b = ipv4Bytes(g)!;
        out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const [head, tail] = addr.split('::');
  if (tail === undefined) groups = parse(head);
  else {
    const h = parse(head);
    const t = parse(tail);
    groups = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  }
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

export interface ProxyHeaderToSend {
  source: ProxyAddress;
  destination: ProxyAddress;
  tlvs?: ProxyTlv[];
}

/**
 * A PROXY v2 header with command PROXY over TCP. Both addresses IPv4 (or IPv4-mapped) → AF_INET;
 * otherwise AF_INET6, an IPv4 address then written IPv4-mapped (`::ffff:a.b.c.d`), since the two
 * addresses of one header share a family.
 */
export function encodeProxyV2(h: ProxyHeaderToSend): Buffer {
  for (const [what, a] of [
    ['source', h.source],
    ['destination', h.destination],
  ] as const) {
    if (!Number.isInteger(a.port) || a.port < 0 || a.port > 0xffff)
      throw new RangeError(`PROXY ${what} port ${a.port} is out of range`);
    if (isIP(a.address.replace(/%.*$/, '')) === 0)
      throw new RangeError(`PROXY ${what} ${JSON.stringify(a.address)} is not an IP address`);
  }
  const src4 = ipv4Bytes(h.source.address);
  const dst4 = ipv4Bytes(h.destination.address);
  let addresses: Buffer;
  let famProto: number;
  if (src4 && dst4) {
    addresses = Buffer.alloc(12);
    src4.copy(addresses, 0);
    dst4.copy(addresses, 4);
    addresses.writeUInt16BE(h.source.port, 8);
    addresses.writeUInt16BE(h.destination.port, 10);
    famProto = TCP4;
  } else {
    const v6 = (a: string, v4: Buffer | undefined): Buffer =>
      v4 ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), v4]) : ipv6Bytes(a);
    addresses = Buffer.alloc(36);
    v6(h.source.address, src4).copy(addresses, 0);
    v6(h.destination.address, dst4).copy(addresses, 16);
    addresses.writeUInt16BE(h.source.port, 32);
    addresses.writeUInt16BE(h.destination.port, 34);
    famProto = TCP6;
  }
  const tlvs = Buffer.concat((h.tlvs ?? []).map(encodeTlv));
  const len = addresses.length + tlvs.length;
  if (len > 0xffff) throw new RangeError('PROXY header longer than 65535 bytes');
  const fixed = Buffer.alloc(FIXED);
  PROXY_V2_SIGNATURE.copy(fixed, 0);
  fixed[12] = V2_PROXY;
  fixed[13] = famProto;
  fixed.writeUInt16BE(len, 14);
  return Buffer.concat([fixed, addresses, tlvs]);
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
