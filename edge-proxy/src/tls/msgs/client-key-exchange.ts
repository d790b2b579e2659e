/** TLS 1.2 ClientKeyExchange (RFC 8422 §5.7, RFC 5246 §7.4.7.1). */
import { Reader } from '../codec';

/** ClientKeyExchange for ECDHE (RFC 8422 §5.7): the client's public point. */
export function parseEcdhClientKeyExchange(body: Buffer): Buffer {
  const r = new Reader(body, 'ClientKeyExchange');
  const point = r.vec8('ecdh_Yc', 1);
  r.end();
  return point;
}

/** ClientKeyExchange for RSA (RFC 5246 §7.4.7.1): the encrypted premaster secret. */
export function parseRsaClientKeyExchange(body: Buffer): Buffer {
  const r = new Reader(body, 'ClientKeyExchange');
  const encrypted = r.vec16('EncryptedPreMasterSecret', 1);
  r.end();
  return encrypted;
}
