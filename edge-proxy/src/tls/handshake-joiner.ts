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
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessageSize: number) {}

  push(fragment: Buffer): void {
    this.pending = this.pending.length === 0 ? fragment : Buffer.concat([this.pending, fragment]);
  }

  /** True while bytes of an unfinished message are buffered. */
  get hasPartial(): boolean {
    return this.pending.length > 0;
  }

  next(): HandshakeMessage | null {
    if (this.pending.length < 4) return null;
    const length = this.pending.readUIntBE(1, 3);
    if (length > this.maxMessageSize) {
      throw new TlsAlert(AlertDescription.illegal_parameter, `handshake message of ${length} bytes exceeds the limit`);
    }
    if (this.pending.length < 4 + length) return null;
    const raw = this.pending.subarray(0, 4 + length);
    this.pending = this.pending.subarray(4 + length);
    return { type: raw[0], body: raw.subarray(4), raw };
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
