/**
 * Strict standard base64 (RFC 4648 §4): the only binary encoding of the key-service protocol
 * (docs/key-service-protocol.md), read the same way by every deployable that decodes it.
 */

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict standard base64 (RFC 4648 §4, padded, no whitespace, canonical trailing bits). Returns
 * undefined for anything else.
 */
export function decodeBase64Strict(s: string): Buffer | undefined {
  if (s.length % 4 !== 0 || !BASE64_PATTERN.test(s)) return undefined;
  const buf = Buffer.from(s, 'base64');
  // Rejects non-zero padding bits ("QR==" decodes like "QQ=="): one canonical encoding per value.
  if (buf.toString('base64') !== s) return undefined;
  return buf;
}
