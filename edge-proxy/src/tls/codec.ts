/**
 * Bounded reader and writer for TLS presentation-language vectors (RFC 8446 §3).
 * Every read is bounds-checked; running past the end is a decode_error, never an exception of
 * another kind, so malformed input always maps to the right alert.
 */
import { AlertDescription, TlsAlert } from './alerts';

export class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what = 'message',
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }
  get offset(): number {
    return this.pos;
  }

  private need(n: number): void {
    if (n > this.remaining) throw new TlsAlert(AlertDescription.decode_error, `truncated ${this.what}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const v = this.buf.readUIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  rest(): Buffer {
    return this.bytes(this.remaining);
  }
  /** A length-prefixed vector; `min`/`max` are the spec's bounds on its byte length. */
  private vec(lenBytes: 1 | 2 | 3, min: number, max: number, what: string): Buffer {
    const len = lenBytes === 1 ? this.u8() : lenBytes === 2 ? this.u16() : this.u24();
    if (len < min || len > max) throw new TlsAlert(AlertDescription.decode_error, `${what} length ${len} out of range`);
    return this.bytes(len);
  }
  vec8(what: string, min = 0, max = 0xff): Buffer {
    return this.vec(1, min, max, what);
  }
  vec16(what: string, min = 0, max = 0xffff): Buffer {
    return this.vec(2, min, max, what);
  }
  vec24(what: string, min = 0, max = 0xffffff): Buffer {
    return this.vec(3, min, max, what);
  }
  /** A sub-reader over a length-prefixed vector. */
  sub8(what: string, min = 0, max = 0xff): Reader {
    return new Reader(this.vec8(what, min, max), what);
  }
  sub16(what: string, min = 0, max = 0xffff): Reader {
    return new Reader(this.vec16(what, min, max), what);
  }
  sub24(what: string, min = 0, max = 0xffffff): Reader {
    return new Reader(this.vec24(what, min, max), what);
  }
  /** Lists of fixed-size items: the byte length must be a multiple of the item size. */
  u16List(what: string, minBytes = 2, maxBytes = 0xfffe): number[] {
    const r = this.sub16(what, minBytes, maxBytes);
    if (r.remaining % 2 !== 0) throw new TlsAlert(AlertDescription.decode_error, `${what} has odd length`);
    const out: number[] = [];
    while (r.remaining > 0) out.push(r.u16());
    return out;
  }
  end(): void {
    if (this.remaining !== 0) throw new TlsAlert(AlertDescription.decode_error, `trailing bytes in ${this.what}`);
  }
}

export class Writer {
  private chunks: Buffer[] = [];
  private length = 0;

  private push(b: Buffer): this {
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }
  u8(v: number): this {
    return this.push(Buffer.from([v & 0xff]));
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return this.push(b);
  }
  u24(v: number): this {
    const b = Buffer.alloc(3);
    b.writeUIntBE(v, 0, 3);
    return this.push(b);
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return this.push(b);
  }
  bytes(b: Uint8Array): this {
    return this.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  private vec(lenBytes: 1 | 2 | 3, body: Buffer): this {
    const max = 2 ** (8 * lenBytes) - 1;
    if (body.length > max)
      throw new RangeError(`vector of ${body.length} bytes does not fit a ${lenBytes}-byte length`);
    if (lenBytes === 1) this.u8(body.length);
    else if (lenBytes === 2) this.u16(body.length);
    else this.u24(body.length);
    return this.push(body);
  }
  /** Write a length-prefixed vector whose body is either bytes or built by a callback. */
  vec8(body: Uint8Array | ((w: Writer) => void)): this {
    return this.vec(1, Writer.body(body));
  }
  vec16(body: Uint8Array | ((w: Writer) => void)): this {
    return this.vec(2, Writer.body(body));
  }
  vec24(body: Uint8Array | ((w: Writer) => void)): this {
    return this.vec(3, Writer.body(body));
  }
  private static body(body: Uint8Array | ((w: Writer) => void)): Buffer {
    if (typeof body === 'function') {
      const w = new Writer();
      body(w);
      return w.finish();
    }
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }
  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}
