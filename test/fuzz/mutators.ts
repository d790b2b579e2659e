/**
 * Mutations for the fuzzer: byte-level (flips, interesting values, insert/delete, splice) and
 * TLS-structure-aware (the client flight is parsed into records → handshake messages →
 * ClientHello fields and extensions, mutated there, and re-encoded with correct length fields, so
 * mutations reach the parsers and state machines instead of dying at the first length check).
 * Every random choice comes from one seeded generator, so a run is reproducible from its seed.
 */

/** xorshift128+ style generator on 32-bit lanes: fast, seedable, good enough for mutation choices. */
export class Rng {
  private s0: number;
  private s1: number;
  constructor(seed: number) {
    this.s0 = (seed ^ 0x9e3779b9) >>> 0 || 1;
    this.s1 = (Math.imul(seed, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0 || 2;
    for (let i = 0; i < 8; i++) this.next();
  }
  next(): number {
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= y ^ (y >>> 26);
    this.s1 = x >>> 0;
    return (this.s0 + this.s1) >>> 0;
  }
  /** Integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 0x100000000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

const INTERESTING_8 = [0x00, 0x01, 0x02, 0x03, 0x04, 0x10, 0x14, 0x15, 0x16, 0x17, 0x18, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_16 = [
  0x0000, 0x0001, 0x0002, 0x0100, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x3fff, 0x4000, 0x4001, 0x4100, 0x7f00,
  0x7fff, 0x8000, 0xfeff, 0xfffe, 0xffff,
];

/** Byte-level mutations, AFL-style. `maxLength` bounds the result. */
export function mutateBytes(rng: Rng, input: Buffer, maxLength: number, other?: Buffer): Buffer {
  let b: Buffer = Buffer.from(input);
  const rounds = 1 + rng.below(4);
  for (let i = 0; i < rounds; i++) {
    if (b.length === 0) b = rng.bytes(1 + rng.below(8));
    const at = rng.below(b.length);
    switch (rng.below(9)) {
      case 0:
        b[at] ^= 1 << rng.below(8);
        break;
      case 1:
        b[at] = rng.pick(INTERESTING_8);
        break;
      case 2:
        if (at + 2 <= b.length) b.writeUInt16BE(rng.pick(INTERESTING_16), at);
        break;
      case 3: // arithmetic on a big-endian u16 (length fields)
        if (at + 2 <= b.length)
          b.writeUInt16BE((b.readUInt16BE(at) + rng.pick([-2, -1, 1, 2, 16, -16, 256]) + 0x10000) & 0xffff, at);
        break;
      case 4: // delete a run
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.below(16)))]);
        break;
      case 5: // insert random or repeated bytes
        b = Buffer.concat([
          b.subarray(0, at),
          rng.chance(0.5) ? rng.bytes(1 + rng.below(16)) : Buffer.alloc(1 + rng.below(64), rng.pick(INTERESTING_8)),
          b.subarray(at),
        ]);
        break;
      case 6: // duplicate a slice
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + rng.below(32)), b.subarray(at)]);
        break;
      case 7: // splice with another corpus entry
        if (other && other.length > 0) {
          const from = rng.below(other.length);
          b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + 1 + rng.below(256))]);
        } else b[at] = rng.next() & 0xff;
        break;
      default: // truncate
        b = b.subarray(0, at);
    }
  }
  return b.length > maxLength ? b.subarray(0, maxLength) : b;
}

// ---- TLS structure ---------------------------------------------------------------------------

export interface Record {
  type: number;
  version: number;
  payload: Buffer;
}

/** Splits a byte stream into records; whatever does not parse is returned as `rest`. */
export function splitRecords(stream: Buffer): { records: Record[]; rest: Buffer } {
  const records: Record[] = [];
  let off = 0;
  while (off + 5 <= stream.length) {
    const len = stream.readUInt16BE(off + 3);
    if (off + 5 + len > stream.length) break;
    records.push({
      type: stream[off],
      version: stream.readUInt16BE(off + 1),
      payload: stream.subarray(off + 5, off + 5 + len),
    });
    off += 5 + len;
  }
  return { records, rest: stream.subarray(off) };
}

export function encodeRecord(r: Record): Buffer {
  const h = Buffer.alloc(5);
  h[0] = r.type;
  h.writeUInt16BE(r.version, 1);
  h.writeUInt16BE(r.payload.length & 0xffff, 3);
  return Buffer.concat([h, r.payload]);
}

export interface HelloExtension {
  type: number;
  data: Buffer;
}

/** A ClientHello body split into fields (just enough structure to mutate it and re-encode it). */
export interface HelloFields {
  version: number;
  random: Buffer;
  sessionId: Buffer;
  suites: number[];
  compression: Buffer;
  extensions: HelloExtension[];
}

export function parseHelloFields(body: Buffer): HelloFields | undefined {
  try {
    let p = 0;
    const version = body.readUInt16BE(p);
    p += 2;
    const random = body.subarray(p, p + 32);
    p += 32;
    const sidLen = body[p++];
    const sessionId = body.subarray(p, p + sidLen);
    p += sidLen;
    const suitesLen = body.readUInt16BE(p);
    p += 2;
    const suites: number[] = [];
    for (let i = 0; i + 1 < suitesLen; i += 2) suites.push(body.readUInt16BE(p + i));
    p += suitesLen;
    const compLen = body[p++];
    const compression = body.subarray(p, p + compLen);
    p += compLen;
    const extensions: HelloExtension[] = [];
    if (p + 2 <= body.length) {
      const end = p + 2 + body.readUInt16BE(p);
      p += 2;
      while (p + 4 <= end && p + 4 <= body.length) {
        const type = body.readUInt16BE(p);
        const len = body.readUInt16BE(p + 2);
        extensions.push({ type, data: body.subarray(p + 4, p + 4 + len) });
        p += 4 + len;
      }
    }
    if (random.length !== 32) return undefined;
    return { version, random, sessionId, suites, compression, extensions };
  } catch {
    return undefined;
  }
}

export function encodeHelloFields(f: HelloFields): Buffer {
  const u16 = (v: number): Buffer => Buffer.from([(v >> 8) & 0xff, v & 0xff]);
  const exts = Buffer.concat(f.extensions.map((e) => Buffer.concat([u16(e.type), u16(e.data.length), e.data])));
  return Buffer.concat([
    u16(f.version),
    f.random,
    Buffer.from([f.sessionId.length & 0xff]),
    f.sessionId,
    u16(f.suites.length * 2),
    Buffer.concat(f.suites.map(u16)),
    Buffer.from([f.compression.length & 0xff]),
    f.compression,
    u16(exts.length),
    exts,
  ]);
}

/** Extensions a server reads, with payloads worth trying when inserted from scratch. */
const EXTENSION_DICTIONARY: HelloExtension[] = [
  { type: 0, data: Buffer.from('000c00000974657374732e6c6f63', 'hex') }, // server_name, a truncated name
  { type: 5, data: Buffer.from('0100000000', 'hex') }, // status_request
  { type: 10, data: Buffer.from('0008001d00170018001e', 'hex') }, // supported_groups incl. x448
  { type: 11, data: Buffer.from('0100', 'hex') }, // ec_point_formats
  { type: 13, data: Buffer.from('000a080404030805080604010201', 'hex') }, // sigalgs incl. SHA-1
  { type: 16, data: Buffer.from('000c02683208687474702f312e31', 'hex') }, // ALPN h2, http/1.1
  { type: 16, data: Buffer.from('00020100', 'hex') }, // ALPN with an empty protocol name
  { type: 21, data: Buffer.alloc(32) }, // padding
  { type: 23, data: Buffer.alloc(0) }, // extended_master_secret
  { type: 28, data: Buffer.from('4001', 'hex') }, // record_size_limit
  { type: 35, data: Buffer.alloc(0) }, // session_ticket, empty
  { type: 35, data: Buffer.alloc(48, 0x41) }, // session_ticket, garbage ticket
  { type: 42, data: Buffer.alloc(0) }, // early_data
  { type: 43, data: Buffer.from('0403040303', 'hex') }, // supported_versions 1.3, 1.2
  { type: 43, data: Buffer.from('020302', 'hex') }, // supported_versions 1.1 only
  { type: 43, data: Buffer.from('027f1c', 'hex') }, // a draft version
  { type: 44, data: Buffer.from('0004deadbeef', 'hex') }, // cookie
  { type: 45, data: Buffer.from('0101', 'hex') }, // psk_key_exchange_modes psk_dhe_ke
  { type: 45, data: Buffer.from('0100', 'hex') }, // psk_ke only
  { type: 49, data: Buffer.alloc(0) }, // post_handshake_auth
  { type: 51, data: Buffer.from('0024001d0020' + '09'.repeat(32), 'hex') }, // key_share x25519
  { type: 51, data: Buffer.from('0006001700020401', 'hex') }, // key_share P-256, bad point
  { type: 51, data: Buffer.alloc(2) }, // key_share, empty list (asks for HRR)
  { type: 41, data: Buffer.from('000f0009' + '41'.repeat(9) + '00000000' + '0021' + '20' + '00'.repeat(32), 'hex') }, // pre_shared_key, bogus identity + binder
  { type: 0xff01, data: Buffer.from('00', 'hex') }, // renegotiation_info, empty
  { type: 0xff01, data: Buffer.from('0c' + '00'.repeat(12), 'hex') }, // renegotiation_info, non-empty (a renegotiation)
  { type: 0x0a0a, data: Buffer.alloc(0) }, // GREASE
];

const SUITE_DICTIONARY = [
  0x1301, 0x1302, 0x1303, 0x1304, 0xc02b, 0xc02c, 0xc02f, 0xc030, 0xcca8, 0xcca9, 0x009c, 0x009d, 0x002f, 0xc013,
  0x00ff, 0x5600, 0x0a0a, 0x0000,
];

/** Structure-aware mutation of one ClientHello body. */
function mutateHello(rng: Rng, f: HelloFields, maxLength: number): void {
  const exts = f.extensions;
  switch (rng.below(12)) {
    case 0:
      if (exts.length) exts.splice(rng.below(exts.length), 1);
      break;
    case 1:
      if (exts.length) exts.splice(rng.below(exts.length + 1), 0, { ...exts[rng.below(exts.length)] }); // duplicate
      break;
    case 2:
      if (exts.length > 1) {
        const i = rng.below(exts.length);
        const j = rng.below(exts.length);
        [exts[i], exts[j]] = [exts[j], exts[i]];
      }
      break;
    case 3:
    case 4:
      exts.splice(rng.below(exts.length + 1), 0, { ...rng.pick(EXTENSION_DICTIONARY) });
      break;
    case 5:
    case 6:
    case 7:
      if (exts.length) {
        const e = exts[rng.below(exts.length)];
        e.data = mutateBytes(rng, e.data, 4096);
      }
      break;
    case 8:
      if (rng.chance(0.5) && f.suites.length) f.suites.splice(rng.below(f.suites.length), 1);
      else f.suites.splice(rng.below(f.suites.length + 1), 0, rng.pick(SUITE_DICTIONARY));
      break;
    case 9:
      f.version = rng.pick([0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x7f1c, 0xfefd]);
      break;
    case 10:
      f.compression = rng.pick([Buffer.from([0]), Buffer.from([1]), Buffer.from([1, 0]), Buffer.alloc(0)]);
      break;
    default:
      f.sessionId = rng.pick([Buffer.alloc(0), rng.bytes(32), rng.bytes(33)]).subarray(0, Math.min(255, maxLength));
  }
}

/**
 * A structure-aware mutation of a whole client flight: mutate the ClientHello fields, re-encode,
 * re-fragment the handshake stream into records of random sizes, or reorder/duplicate/drop records.
 * Falls back to byte-level mutation when the input does not parse as records.
 */
export function mutateFlight(rng: Rng, input: Buffer, maxLength: number, other?: Buffer): Buffer {
  const { records, rest } = splitRecords(input);
  if (records.length === 0 || rng.chance(0.25)) return mutateBytes(rng, input, maxLength, other);
  const choice = rng.below(10);
  if (choice < 6) {
    // Join the leading handshake records, mutate the first ClientHello, and re-fragment.
    let n = 0;
    while (n < records.length && records[n].type === 22) n++;
    const hs = Buffer.concat(records.slice(0, n).map((r) => r.payload));
    if (n > 0 && hs.length >= 4 && hs[0] === 1) {
      const len = hs.readUIntBE(1, 3);
      const fields = parseHelloFields(hs.subarray(4, 4 + len));
      if (fields) {
        mutateHello(rng, fields, maxLength);
        if (rng.chance(0.3)) mutateHello(rng, fields, maxLength);
        const body = encodeHelloFields(fields);
        const header = Buffer.from([1, (body.length >> 16) & 0xff, (body.length >> 8) & 0xff, body.length & 0xff]);
        const joined = Buffer.concat([header, body, hs.subarray(4 + len)]);
        const out: Buffer[] = [];
        const version = records[0].version;
        // Usually one record; sometimes split (handshake-joiner), sometimes with empty records.
        const size = rng.chance(0.7) ? 16384 : 1 + rng.below(Math.max(1, joined.length));
        for (let off = 0; off < joined.length; off += size)
          out.push(encodeRecord({ type: 22, version, payload: joined.subarray(off, off + size) }));
        const result = Buffer.concat([...out, ...records.slice(n).map(encodeRecord), rest]);
        return result.length > maxLength ? result.subarray(0, maxLength) : result;
      }
    }
  }
  const recs = records.slice();
  switch (choice) {
    case 6: // drop a record
      recs.splice(rng.below(recs.length), 1);
      break;
    case 7: // duplicate a record
      recs.splice(rng.below(recs.length + 1), 0, recs[rng.below(recs.length)]);
      break;
    case 8: // insert a CCS, an alert or an application-data record somewhere
      recs.splice(
        rng.below(recs.length + 1),
        0,
        rng.pick<Record>([
          { type: 20, version: 0x0303, payload: Buffer.from([1]) },
          { type: 20, version: 0x0303, payload: Buffer.from([2, 1]) },
          { type: 21, version: 0x0303, payload: Buffer.from([1, 0]) },
          { type: 21, version: 0x0303, payload: Buffer.from([2, 40]) },
          { type: 23, version: 0x0303, payload: rng.bytes(1 + rng.below(40)) },
          { type: 22, version: 0x0303, payload: Buffer.alloc(0) },
        ]),
      );
      break;
    default: // mutate one record's payload bytes, keeping its length field right
      if (recs.length) {
        const i = rng.below(recs.length);
        recs[i] = { ...recs[i], payload: mutateBytes(rng, recs[i].payload, 16384 + 2048) };
      }
  }
  const result = Buffer.concat([...recs.map(encodeRecord), rest]);
  return result.length > maxLength ? result.subarray(0, maxLength) : result;
}
