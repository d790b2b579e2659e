/**
 * Reassembles handshake messages from handshake-record payloads: one message may span several
 * records, and one record may carry several messages (RFC 8446 §5.1).
 */
import { AlertDescription, TlsAlert } from './alerts';

export interface HandshakeMessage {
  type: number;
  body: Buffer;
  /** Header + body, exactly as received: what goes into the transcript hash. */
  raw: Buffer;
}

export class HandshakeJoiner {
  /** Fragments of the message(s) not yet returned, joined only once a message is complete. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly limitFor: (type: number) => number;

  /** `limit`: the largest body accepted, for every message or per handshake type. */
  constructor(limit: number | ((type: number) => number)) {
    this.limitFor = typeof limit === 'number' ? () => limit : limit;
  }

  push(fragment: Buffer): void {
    if (fragment.length === 0) return;
    this.chunks.push(fragment);
    this.buffered += fragment.length;
  }

  /** True while bytes of an unfinished (or not yet returned) message are buffered. */
  get hasPartial(): boolean {
    return this.buffered > 0;
  }

  next(): HandshakeMessage | null {
    if (this.buffered < 4) return null;
    if (this.chunks[0].length < 4) this.join();
    const head = this.chunks[0];
    const length = head.readUIntBE(1, 3);
    // The bound is checked from the header, before the body is buffered.
    if (length > this.limitFor(head[0])) {
      throw new TlsAlert(AlertDescription.illegal_parameter, `handshake message of ${length} bytes exceeds the limit`);
    }
    if (this.buffered < 4 + length) return null;
    // One copy per message, however many records it came in (not one per record).
    if (this.chunks[0].length < 4 + length) this.join();
    const first = this.chunks[0];
    const raw = first.subarray(0, 4 + length);
    const rest = first.subarray(4 + length);
    if (rest.length > 0) this.chunks[0] = rest;
    else this.chunks.shift();
    this.buffered -= raw.length;
    return { type: raw[0], body: raw.subarray(4), raw };
  }

  private join(): void {
    this.chunks = [Buffer.concat(this.chunks, this.buffered)];
  }
}

export enum HandshakeType {
  hello_request = 0,
  client_hello = 1,
  server_hello = 2,
  new_session_ticket = 4,
  end_of_early_data = 5,
  encrypted_extensions = 8,
  certificate = 11,
  server_key_exchange = 12,
  certificate_request = 13,
  server_hello_done = 14,
  certificate_verify = 15,
  client_key_exchange = 16,
  finished = 20,
  certificate_status = 22,
  key_update = 24,
  message_hash = 254,
}

export function handshakeMessage(type: HandshakeType, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = type;
  h.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([h, body]);
}
