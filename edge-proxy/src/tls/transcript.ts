/** Running transcript hash of the handshake (RFC 8446 §4.4.1), with intermediate digests via copy(). */
import * as crypto from 'node:crypto';
import { HandshakeType, handshakeMessage } from './handshake-joiner';
import type { HashName } from './suites';

export class Transcript {
  private h: crypto.Hash;

  constructor(hashName: HashName) {
    this.h = crypto.createHash(hashName);
  }

  update(message: Buffer): void {
    this.h.update(message);
  }

  /** Transcript-Hash of everything so far; the running state is untouched. */
  digest(): Buffer {
    return this.h.copy().digest();
  }

  /** Transcript-Hash of everything so far plus `extra`, without adding `extra` (PSK binders). */
  digestWith(extra: Buffer): Buffer {
    return this.h.copy().update(extra).digest();
  }

  /**
   * After a HelloRetryRequest the first ClientHello is replaced by a synthetic message_hash
   * message containing its hash (RFC 8446 §4.4.1).
   */
  static afterHelloRetry(hashName: HashName, firstClientHello: Buffer): Transcript {
    const t = new Transcript(hashName);
    const chHash = crypto.createHash(hashName).update(firstClientHello).digest();
    t.update(handshakeMessage(HandshakeType.message_hash, chHash));
    return t;
  }
}
