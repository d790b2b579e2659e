/**
 * Checks shared by both protocol versions: the peer's Finished (RFC 8446 §4.4.4, RFC 5246 §7.4.9)
 * and the TLS 1.2 key block (RFC 5246 §6.3).
 */
import * as crypto from 'node:crypto';
import { AlertDescription, TlsAlert } from './alerts';
import type { HandshakeMessage } from './handshake-joiner';
import { prf12 } from '../../../contract/tls12-prf';
import type { CipherSuite } from './suites';

/** The client's Finished must be exactly `expected`: wrong length is decode_error, wrong value decrypt_error. */
export function verifyFinished(fin: HandshakeMessage, expected: Buffer): void {
  if (fin.body.length !== expected.length)
    throw new TlsAlert(AlertDescription.decode_error, 'Finished has the wrong length');
  if (!crypto.timingSafeEqual(fin.body, expected))
    throw new TlsAlert(AlertDescription.decrypt_error, 'client Finished does not verify');
}

export interface Tls12TrafficKeys {
  client: { key: Buffer; iv: Buffer };
  server: { key: Buffer; iv: Buffer };
}

/** Key block (RFC 5246 §6.3): client write key, server write key, client IV, server IV. */
export function tls12KeyBlock(
  suite: CipherSuite,
  masterSecret: Buffer,
  serverRandom: Buffer,
  clientRandom: Buffer,
): Tls12TrafficKeys {
  const keyLen = suite.keyLength;
  const ivLen = suite.fixedIvLength!;
  const block = prf12(
    suite.hash,
    masterSecret,
    'key expansion',
    Buffer.concat([serverRandom, clientRandom]),
    2 * keyLen + 2 * ivLen,
  );
  return {
    client: { key: block.subarray(0, keyLen), iv: block.subarray(2 * keyLen, 2 * keyLen + ivLen) },
    server: { key: block.subarray(keyLen, 2 * keyLen), iv: block.subarray(2 * keyLen + ivLen) },
  };
}
