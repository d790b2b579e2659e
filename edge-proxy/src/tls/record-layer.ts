/**
 * Record layer (RFC 8446 §5, RFC 5246 §6.2): framing with size limits, and record protection
 * (AEAD seal/open with per-direction sequence numbers). Protection objects own their keys; a key
 * change replaces the object, so a record can never be opened under the wrong epoch's state.
 */
import * as crypto from 'node:crypto';
import { AlertDescription, TlsAlert } from './alerts';
import type { AeadAlgorithm } from './suites';

export enum ContentType {
  change_cipher_spec = 20,
  alert = 21,
  handshake = 22,
  application_data = 23,
}

/** Largest plaintext fragment (2^14), and the most AEAD expansion TLS 1.3 allows (RFC 8446 §5.2). */
export const MAX_PLAINTEXT = 16384;
export const TLS13_MAX_CIPHERTEXT = MAX_PLAINTEXT + 256;
/** TLS 1.2 allows 2^14 + 2048 (RFC 5246 §6.2.3). */
export const TLS12_MAX_CIPHERTEXT = MAX_PLAINTEXT + 2048;
const HEADER = 5;
const TAG = 16;
/** Input chunks the record reader keeps apart before it joins them. */
const MAX_CHUNKS = 8;

export interface RawRecord {
  type: ContentType;
  header: Buffer;
  fragment: Buffer;
}

/**
 * Splits a byte stream into records. Enforces the record-size limit before buffering a body. Input
 * chunks are kept as they arrived; a record is a view into its chunk, and only one that straddles
 * chunks is copied together.
 */
export class RecordReader {
  private chunks: Buffer[] = [];
  private total = 0;
  /** Upper bound for a fragment; raised once protection is in place. */
  maxFragment = TLS12_MAX_CIPHERTEXT;

  push(data: Buffer): void {
    if (data.length === 0) return;
    // A peer dribbling tiny segments must not make every record cost a walk over thousands of chunks.
    if (this.chunks.length >= MAX_CHUNKS) this.chunks = [Buffer.concat(this.chunks, this.total)];
    this.chunks.push(data);
    this.total += data.length;
  }

  get buffered(): number {
    return this.total;
  }

  next(): RawRecord | null {
    if (this.total < HEADER) return null;
    const head = this.chunks[0].length >= HEADER ? this.chunks[0] : this.peek(HEADER);
    const type = head[0];
    if (type < ContentType.change_cipher_spec || type > ContentType.application_data) {
      throw new TlsAlert(AlertDescription.unexpected_message, `unknown record content type ${type}`);
    }
    const length = head.readUInt16BE(3);
    if (length > this.maxFragment) throw new TlsAlert(AlertDescription.record_overflow, `record of ${length} bytes`);
    if (this.total < HEADER + length) return null;
    const record = this.take(HEADER + length);
    return { type, header: record.subarray(0, HEADER), fragment: record.subarray(HEADER) };
  }

  /** The first `n` buffered bytes, contiguous, left in place. */
  private peek(n: number): Buffer {
    return Buffer.concat(this.chunks, n);
  }

  /** Removes and returns the first `n` buffered bytes: a view when one chunk holds them, else a copy. */
  private take(n: number): Buffer {
    this.total -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const used = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, used);
      filled += used;
      if (used === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(used);
    }
    return out;
  }
}

export function recordHeader(type: ContentType, length: number, version = 0x0303): Buffer {
  const h = Buffer.alloc(HEADER);
  h[0] = type;
  h.writeUInt16BE(version, 1);
  h.writeUInt16BE(length, 3);
  return h;
}

export interface OpenedRecord {
  type: ContentType;
  plaintext: Buffer;
}

export interface RecordProtection {
  /** True once records are encrypted in this direction. */
  readonly encrypted: boolean;
  /** Largest record fragment accepted under this protection. */
  readonly maxFragment: number;
  /** Records processed so far with these keys (for the AEAD usage limits of RFC 8446 §5.5). */
  readonly sequence: number;
  /** One record (type + at most MAX_PLAINTEXT bytes) → wire bytes including the header. */
  seal(type: ContentType, plaintext: Buffer): Buffer;
  /** The same record as pieces to write in order (header, ciphertext, tag), without copying them together. */
  sealParts(type: ContentType, plaintext: Buffer): Buffer[];
  open(record: RawRecord): OpenedRecord;
}

/** Before keys are established: records pass in the clear. */
export class NullProtection implements RecordProtection {
  readonly encrypted = false;
  // Plaintext records are at most 2^14; a longer one is refused in open() as record_overflow,
  // after the reader has let in what a TLS 1.2 ciphertext could be.
  readonly maxFragment = TLS12_MAX_CIPHERTEXT;
  readonly sequence = 0;
  seal(type: ContentType, plaintext: Buffer): Buffer {
    return Buffer.concat([recordHeader(type, plaintext.length), plaintext]);
  }
  sealParts(type: ContentType, plaintext: Buffer): Buffer[] {
    return [recordHeader(type, plaintext.length), plaintext];
  }
  open(record: RawRecord): OpenedRecord {
    if (record.fragment.length > MAX_PLAINTEXT)
      throw new TlsAlert(AlertDescription.record_overflow, 'plaintext record too long');
    return { type: record.type, plaintext: record.fragment };
  }
}

/** Per-record nonce: the static IV XORed with the 64-bit sequence number (RFC 8446 §5.3, RFC 7905 §2). */
export function recordNonce(iv: Buffer, seq: number): Buffer {
  const nonce = Buffer.from(iv);
  const hi = Math.floor(seq / 0x100000000);
  const lo = seq >>> 0;
  nonce.writeUInt32BE((nonce.readUInt32BE(4) ^ hi) >>> 0, 4);
  nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ lo) >>> 0, 8);
  return nonce;
}

/**
 * Encrypts the concatenation of `parts` and returns the ciphertext pieces followed by the tag, so a
 * record is assembled with one copy.
 */
function aeadSealParts(
  aead: AeadAlgorithm,
  key: Buffer,
  nonce: Buffer,
  aad: Buffer,
  parts: Buffer[],
  plaintextLength: number,
): Buffer[] {
  const cipher = crypto.createCipheriv(aead, key, nonce, {
    authTagLength: TAG,
  } as crypto.CipherGCMOptions) as crypto.CipherGCM;
  cipher.setAAD(aad, { plaintextLength });
  const out = parts.map((p) => cipher.update(p));
  cipher.final();
  out.push(cipher.getAuthTag());
  return out;
}

/** The one-byte TLSInnerPlaintext content type trailer (RFC 8446 §5.2), one shared buffer per type. */
const CONTENT_TYPE_BYTE: Record<number, Buffer> = Object.fromEntries(
  [20, 21, 22, 23].map((t) => [t, Buffer.from([t])]),
);

/** Returns null when authentication fails (the caller decides the alert). */
export function aeadOpen(aead: AeadAlgorithm, key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer): Buffer | null {
  if (sealed.length < TAG) return null;
  const decipher = crypto.createDecipheriv(aead, key, nonce, {
    authTagLength: TAG,
  } as crypto.CipherGCMOptions) as crypto.DecipherGCM;
  decipher.setAAD(aad, { plaintextLength: sealed.length - TAG });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  const body = decipher.update(sealed.subarray(0, sealed.length - TAG));
  try {
    decipher.final();
  } catch {
    return null;
  }
  return body;
}

/** TLS 1.3 record protection: TLSInnerPlaintext inside opaque application_data records (RFC 8446 §5.2). */
export class Tls13Protection implements RecordProtection {
  readonly encrypted = true;
  readonly maxFragment = TLS13_MAX_CIPHERTEXT;
  private seq = 0;

  constructor(
    private readonly aead: AeadAlgorithm,
    private readonly key: Buffer,
    private readonly iv: Buffer,
  ) {}

  get sequence(): number {
    return this.seq;
  }

  seal(type: ContentType, plaintext: Buffer): Buffer {
    return Buffer.concat(this.sealParts(type, plaintext), HEADER + plaintext.length + 1 + TAG);
  }

  sealParts(type: ContentType, plaintext: Buffer): Buffer[] {
    const innerLength = plaintext.length + 1;
    const header = recordHeader(ContentType.application_data, innerLength + TAG);
    const typeByte = CONTENT_TYPE_BYTE[type] ?? Buffer.from([type]);
    return [
      header,
      ...aeadSealParts(
        this.aead,
        this.key,
        recordNonce(this.iv, this.seq++),
        header,
        [plaintext, typeByte],
        innerLength,
      ),
    ];
  }

  open(record: RawRecord): OpenedRecord {
    const opened = this.tryOpen(record);
    if (!opened) throw new TlsAlert(AlertDescription.bad_record_mac, 'record failed authentication');
    return opened;
  }

  /**
   * Like open(), but a record that fails authentication returns null and leaves the sequence number
   * alone: how a server that declined 0-RTT skips the client's early data (RFC 8446 §4.2.10).
   */
  tryOpen(record: RawRecord): OpenedRecord | null {
    if (record.type !== ContentType.application_data) {
      throw new TlsAlert(
        AlertDescription.unexpected_message,
        `unprotected ${ContentType[record.type]} record after keys were set`,
      );
    }
    const inner = aeadOpen(this.aead, this.key, recordNonce(this.iv, this.seq), record.header, record.fragment);
    if (!inner) return null;
    this.seq++;
    // RFC 8446 §5.4: padding does not change the limit; the whole TLSInnerPlaintext is at most 2^14 + 1.
    if (inner.length > MAX_PLAINTEXT + 1)
      throw new TlsAlert(AlertDescription.record_overflow, 'inner plaintext too long');
    // Strip zero padding; the last non-zero byte is the real content type (RFC 8446 §5.4). A record
    // that is all zeros has no content type: unexpected_message (same section).
    let end = inner.length - 1;
    while (end >= 0 && inner[end] === 0) end--;
    if (end < 0) throw new TlsAlert(AlertDescription.unexpected_message, 'record has no content type');
    const type = inner[end];
    if (type < ContentType.change_cipher_spec || type > ContentType.application_data) {
      throw new TlsAlert(AlertDescription.unexpected_message, `unknown inner content type ${type}`);
    }
    return { type, plaintext: inner.subarray(0, end) };
  }
}

/**
 * TLS 1.2 AEAD record protection. AES-GCM (RFC 5288): nonce = fixed IV (4) ‖ explicit nonce (8),
 * the explicit part sent in the record (we use the sequence number). ChaCha20-Poly1305 (RFC 7905):
 * nonce = IV (12) XOR sequence, nothing explicit. AAD = seq ‖ type ‖ version ‖ plaintext length
 * (RFC 5246 §6.2.3.3).
 */
export class Tls12Protection implements RecordProtection {
  readonly encrypted = true;
  readonly maxFragment = TLS12_MAX_CIPHERTEXT;
  private seq = 0;

  constructor(
    private readonly aead: AeadAlgorithm,
    private readonly key: Buffer,
    private readonly iv: Buffer,
    private readonly recordIvLength: number,
  ) {}

  get sequence(): number {
    return this.seq;
  }

  private aad(type: ContentType, length: number): Buffer {
    const a = Buffer.alloc(13);
    a.writeUInt32BE(Math.floor(this.seq / 0x100000000), 0);
    a.writeUInt32BE(this.seq >>> 0, 4);
    a[8] = type;
    a.writeUInt16BE(0x0303, 9);
    a.writeUInt16BE(length, 11);
    return a;
  }

  private nonce(explicit?: Buffer): Buffer {
    if (this.recordIvLength === 0) return recordNonce(this.iv, this.seq);
    return Buffer.concat([this.iv, explicit ?? Buffer.alloc(0)]);
  }

  seal(type: ContentType, plaintext: Buffer): Buffer {
    const parts = this.sealParts(type, plaintext);
    return Buffer.concat(parts);
  }

  sealParts(type: ContentType, plaintext: Buffer): Buffer[] {
    let explicit = Buffer.alloc(0);
    if (this.recordIvLength > 0) {
      explicit = Buffer.alloc(8);
      explicit.writeUInt32BE(Math.floor(this.seq / 0x100000000), 0);
      explicit.writeUInt32BE(this.seq >>> 0, 4);
    }
    const body = aeadSealParts(
      this.aead,
      this.key,
      this.nonce(explicit),
      this.aad(type, plaintext.length),
      [plaintext],
      plaintext.length,
    );
    this.seq++;
    const length = explicit.length + plaintext.length + TAG;
    return [recordHeader(type, length), explicit, ...body];
  }

  open(record: RawRecord): OpenedRecord {
    const explicit = record.fragment.subarray(0, this.recordIvLength);
    const sealed = record.fragment.subarray(this.recordIvLength);
    const plaintextLength = sealed.length - TAG;
    if (explicit.length < this.recordIvLength || plaintextLength < 0) {
      throw new TlsAlert(AlertDescription.bad_record_mac, 'record too short for its AEAD');
    }
    const plaintext = aeadOpen(
      this.aead,
      this.key,
      this.nonce(explicit),
      this.aad(record.type, plaintextLength),
      sealed,
    );
    if (!plaintext) throw new TlsAlert(AlertDescription.bad_record_mac, 'record failed authentication');
    this.seq++;
    if (plaintext.length > MAX_PLAINTEXT) throw new TlsAlert(AlertDescription.record_overflow, 'plaintext too long');
    return { type: record.type, plaintext };
  }
}
