/**
 * record_size_limit (RFC 8449). The client tells us the largest protected record plaintext it will
 * accept; we honour it for every record we protect and announce our own limit, which is simply the
 * protocol maximum (we accept any record TLS allows).
 */
import { Writer } from './codec';
import { Extension, ExtensionType } from './extensions';
import type { ClientHello } from './msgs/client-hello';
import { MAX_PLAINTEXT } from './record-layer';

/** The client's limit, or undefined when it sent none (decoded, and checked to be at least 64, with the ClientHello). */
export function clientRecordSizeLimit(hello: ClientHello): number | undefined {
  return hello.recordSizeLimit;
}

/**
 * Our limit: in TLS 1.3 it counts the inner content type (and padding), so the maximum is 2^14 + 1;
 * in TLS 1.2 it is 2^14 (RFC 8449 §4).
 */
export function recordSizeLimitExtension(tls13: boolean): Extension {
  return { type: ExtensionType.record_size_limit, data: new Writer().u16(MAX_PLAINTEXT + (tls13 ? 1 : 0)).finish() };
}

/** Plaintext bytes per protected record we may send under the client's limit. */
export function maxPlaintextUnder(limit: number, tls13: boolean): number {
  // TLS 1.3: the limit covers content + content type byte (we add no padding).
  return Math.min(MAX_PLAINTEXT, tls13 ? limit - 1 : limit);
}
