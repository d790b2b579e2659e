/**
 * The TLS 1.3 key schedule (RFC 8446 §7.1) on node:crypto HMAC. Unit-tested against the RFC 8448
 * traces. Secrets stay inside this module and the record protection objects it feeds; nothing here
 * is ever logged.
 */
import * as crypto from 'node:crypto';
import { Writer } from '../codec';
import type { HashName } from '../suites';

export function hkdfExtract(hash: HashName, salt: Buffer, ikm: Buffer): Buffer {
  return crypto.createHmac(hash, salt).update(ikm).digest();
}

/** HKDF-Expand (RFC 5869 §2.3). */
export function hkdfExpand(hash: HashName, prk: Buffer, info: Buffer, length: number): Buffer {
  // Every TLS 1.3 label asks for at most one hash length: T(1) = HMAC(PRK, info ‖ 0x01), one HMAC
  // with one update (a TLS 1.3 handshake runs ~25 of these).
  if (length <= hashLength(hash)) {
    const input = Buffer.allocUnsafe(info.length + 1);
    info.copy(input, 0);
    input[info.length] = 1;
    return crypto.createHmac(hash, prk).update(input).digest().subarray(0, length);
  }
  const out: Buffer[] = [];
  let prev = Buffer.alloc(0);
  let total = 0;
  for (let i = 1; total < length; i++) {
    prev = crypto
      .createHmac(hash, prk)
      .update(prev)
      .update(info)
      .update(Buffer.from([i]))
      .digest();
    out.push(prev);
    total += prev.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** HKDF-Expand-Label (RFC 8446 §7.1). */
export function hkdfExpandLabel(
  hash: HashName,
  secret: Buffer,
  label: string,
  context: Buffer,
  length: number,
): Buffer {
  const info = new Writer()
    .u16(length)
    .vec8(Buffer.from(`tls13 ${label}`, 'latin1'))
    .vec8(context)
    .finish();
  return hkdfExpand(hash, secret, info, length);
}

export function hashLength(hash: HashName): number {
  return hash === 'sha256' ? 32 : 48;
}

/** Hash of the empty string; a constant, computed once per hash (used 3 times per handshake). */
const EMPTY_HASHES: Record<HashName, Buffer> = {
  sha256: crypto.createHash('sha256').digest(),
  sha384: crypto.createHash('sha384').digest(),
};

export function emptyHash(hash: HashName): Buffer {
  return Buffer.from(EMPTY_HASHES[hash]);
}

export interface TrafficKeys {
  key: Buffer;
  iv: Buffer;
}

/** [sender]_write_key and [sender]_write_iv (RFC 8446 §7.3). */
export function trafficKeys(hash: HashName, secret: Buffer, keyLength: number): TrafficKeys {
  return {
    key: hkdfExpandLabel(hash, secret, 'key', Buffer.alloc(0), keyLength),
    iv: hkdfExpandLabel(hash, secret, 'iv', Buffer.alloc(0), 12),
  };
}

/** verify_data = HMAC(finished_key, Transcript-Hash) (RFC 8446 §4.4.4). */
export function finishedVerifyData(hash: HashName, baseKey: Buffer, transcriptHash: Buffer): Buffer {
  const finishedKey = hkdfExpandLabel(hash, baseKey, 'finished', Buffer.alloc(0), hashLength(hash));
  return crypto.createHmac(hash, finishedKey).update(transcriptHash).digest();
}

/** application_traffic_secret_N+1 (RFC 8446 §7.2). */
export function nextTrafficSecret(hash: HashName, secret: Buffer): Buffer {
  return hkdfExpandLabel(hash, secret, 'traffic upd', Buffer.alloc(0), hashLength(hash));
}

/**
 * The schedule's chain of secrets. Each stage is computed once from the previous stage and the
 * transcript hash at the point the RFC names.
 */
export class KeySchedule {
  private readonly zeros: Buffer;
  readonly earlySecret: Buffer;
  private handshakeSecret?: Buffer;
  private masterSecret?: Buffer;

  constructor(
    readonly hash: HashName,
    psk?: Buffer,
  ) {
    this.zeros = Buffer.alloc(hashLength(hash));
    this.earlySecret = hkdfExtract(hash, this.zeros, psk ?? this.zeros);
  }

  deriveSecret(secret: Buffer, label: string, transcriptHash: Buffer): Buffer {
    return hkdfExpandLabel(this.hash, secret, label, transcriptHash, hashLength(this.hash));
  }

  /** binder_key for resumption PSKs (RFC 8446 §7.1). */
  resumptionBinderKey(): Buffer {
    return this.deriveSecret(this.earlySecret, 'res binder', emptyHash(this.hash));
  }

  /** Input: (EC)DHE shared secret and Transcript-Hash(ClientHello..ServerHello). */
  handshakeTrafficSecrets(sharedSecret: Buffer, helloHash: Buffer): { client: Buffer; server: Buffer } {
    const derived = this.deriveSecret(this.earlySecret, 'derived', emptyHash(this.hash));
    this.handshakeSecret = hkdfExtract(this.hash, derived, sharedSecret);
    return {
      client: this.deriveSecret(this.handshakeSecret, 'c hs traffic', helloHash),
      server: this.deriveSecret(this.handshakeSecret, 's hs traffic', helloHash),
    };
  }

  /** Input: Transcript-Hash(ClientHello..server Finished). */
  applicationTrafficSecrets(serverFinishedHash: Buffer): { client: Buffer; server: Buffer } {
    if (!this.handshakeSecret) throw new Error('handshake secret not derived yet');
    const derived = this.deriveSecret(this.handshakeSecret, 'derived', emptyHash(this.hash));
    this.masterSecret = hkdfExtract(this.hash, derived, this.zeros);
    return {
      client: this.deriveSecret(this.masterSecret, 'c ap traffic', serverFinishedHash),
      server: this.deriveSecret(this.masterSecret, 's ap traffic', serverFinishedHash),
    };
  }

  /** Input: Transcript-Hash(ClientHello..client Finished). */
  resumptionMasterSecret(clientFinishedHash: Buffer): Buffer {
    if (!this.masterSecret) throw new Error('master secret not derived yet');
    return this.deriveSecret(this.masterSecret, 'res master', clientFinishedHash);
  }
}
