/**
 * The record layer's framing and its pieces-based sealing: records come out whole and in order
 * however the byte stream is cut (a header split over chunks, a record over many), sizes are checked
 * from the header, and a record sealed as pieces is the same bytes as one sealed whole.
 */
import * as crypto from 'node:crypto';
import { AlertDescription, TlsAlert } from '../../../../edge-proxy/src/tls/alerts';
import {
  ContentType,
  NullProtection,
  RecordReader,
  Tls12Protection,
  Tls13Protection,
} from '../../../../edge-proxy/src/tls/record-layer';

const plain = new NullProtection();
const records = [Buffer.alloc(0), crypto.randomBytes(1), crypto.randomBytes(300), crypto.randomBytes(16384)].map(
  (b, i) => ({
    type: i % 2 ? ContentType.handshake : ContentType.application_data,
    wire: plain.seal(i % 2 ? ContentType.handshake : ContentType.application_data, b),
    body: b,
  }),
);
const stream = Buffer.concat(records.map((r) => r.wire));

function readAll(reader: RecordReader, chunks: Buffer[]): Array<{ type: number; header: Buffer; fragment: Buffer }> {
  const out = [];
  for (const c of chunks) {
    reader.push(c);
    for (let r = reader.next(); r; r = reader.next()) out.push(r);
  }
  return out;
}

function cut(buf: Buffer, sizes: (i: number) => number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0, i = 0; off < buf.length; i++) {
    const n = Math.max(1, sizes(i));
    out.push(buf.subarray(off, off + n));
    off += n;
  }
  return out;
}

describe('RecordReader', () => {
  it.each([
    ['one chunk', (): number => stream.length],
    ['one byte at a time', (): number => 1],
    ['3-byte chunks (headers split)', (): number => 3],
    ['chunks of 7, 4096, 2 …', (i: number): number => [7, 4096, 2][i % 3]],
  ])('yields every record whole and in order from %s', (_name, sizes) => {
    const reader = new RecordReader();
    const got = readAll(reader, cut(stream, sizes));
    expect(got.map((r) => r.type)).toEqual(records.map((r) => r.type));
    got.forEach((r, i) => {
      expect(r.header.equals(records[i].wire.subarray(0, 5))).toBe(true);
      expect(r.fragment.equals(records[i].body)).toBe(true);
    });
    expect(reader.buffered).toBe(0);
  });

  it('counts what is buffered and returns nothing until a record is complete', () => {
    const reader = new RecordReader();
    reader.push(records[2].wire.subarray(0, 4));
    expect(reader.next()).toBeNull();
    reader.push(records[2].wire.subarray(4, 100));
    expect(reader.next()).toBeNull();
    expect(reader.buffered).toBe(100);
    reader.push(records[2].wire.subarray(100));
    expect(reader.next()?.fragment.equals(records[2].body)).toBe(true);
    expect(reader.buffered).toBe(0);
  });

  it('refuses an oversized record from its header (record_overflow) and an unknown type (unexpected_message)', () => {
    const big = new RecordReader();
    big.maxFragment = 100;
    big.push(Buffer.from([ContentType.application_data, 3, 3]));
    big.push(Buffer.from([0, 101]));
    expect(() => big.next()).toThrow(
      expect.objectContaining({ description: AlertDescription.record_overflow }) as TlsAlert,
    );
    const odd = new RecordReader();
    odd.push(Buffer.from([99, 3, 3, 0, 0]));
    expect(() => odd.next()).toThrow(
      expect.objectContaining({ description: AlertDescription.unexpected_message }) as TlsAlert,
    );
  });
});

describe('sealParts', () => {
  const key = crypto.randomBytes(16);
  const iv = crypto.randomBytes(12);
  it.each([
    [
      'TLS 1.3',
      (): [Tls13Protection, Tls13Protection] => [
        new Tls13Protection('aes-128-gcm', key, iv),
        new Tls13Protection('aes-128-gcm', key, iv),
      ],
    ],
    [
      'TLS 1.2',
      (): [Tls12Protection, Tls12Protection] => [
        new Tls12Protection('aes-128-gcm', key, iv.subarray(0, 4), 8),
        new Tls12Protection('aes-128-gcm', key, iv.subarray(0, 4), 8),
      ],
    ],
  ])('%s: the pieces are the bytes of the whole record, and use one sequence number each', (_name, make) => {
    const [whole, pieces] = make();
    for (const size of [0, 1, 16384]) {
      const data = crypto.randomBytes(size);
      expect(
        Buffer.concat(pieces.sealParts(ContentType.application_data, data)).equals(
          whole.seal(ContentType.application_data, data),
        ),
      ).toBe(true);
    }
    expect(pieces.sequence).toBe(3);
  });
});
