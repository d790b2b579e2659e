/**
 * When a failed TLS 1.2 negotiation is insufficient_security rather than handshake_failure.
 * RFC 8446 §6.2 / RFC 5246 §7.2.2: insufficient_security is "returned instead of handshake_failure
 * when a negotiation has failed specifically because the server requires parameters more secure than
 * those supported by the client". Two RFCs map concrete cases to it:
 *
 * - RFC 7919 §4 (MUST): the client's supported_groups lists FFDHE groups, none of its groups is
 *   acceptable to us, and none of its non-FFDHE suites is either. We implement no finite-field DH
 *   at all (docs/tls-engine.md), so a client that could only do FFDHE is exactly this case.
 * - RFC 7465 §2 (MAY): the client offers only RC4 cipher suites, which TLS forbids.
 *
 * Anything else (e.g. only RSA key exchange against a `kms` key, which KMS cannot decrypt) is a
 * mismatch of capabilities, not of security level, and stays handshake_failure.
 */
import type { NamedGroup } from './groups';
import { TLS_EMPTY_RENEGOTIATION_INFO_SCSV, TLS_FALLBACK_SCSV } from './suites';

/** RFC 7465 §2 lists these (IANA registry: every suite with RC4 in its name). */
const RC4_SUITES = new Set([
  0x0003, 0x0004, 0x0005, 0x0017, 0x0018, 0x0020, 0x0024, 0x0028, 0x002b, 0x008a, 0x008e, 0x0092, 0xc002, 0xc007,
  0xc00c, 0xc011, 0xc016, 0xc033,
]);

/** FFDHE named groups occupy 0x0100–0x01ff (RFC 7919 §4: "even if unknown to the server"). */
const isFfdheGroup = (g: number): boolean => g >= 0x0100 && g <= 0x01ff;

/** GREASE values (RFC 8701) and signalling suites say nothing about what the client can do. */
const isSignal = (s: number): boolean =>
  s === TLS_EMPTY_RENEGOTIATION_INFO_SCSV || s === TLS_FALLBACK_SCSV || (s & 0x0f0f) === 0x0a0a;

/**
 * Called only after no suite could be chosen. Returns why the failure is insufficient_security, or
 * undefined when it is a plain handshake_failure.
 */
export function insufficientSecurity(
  clientSuites: number[],
  clientGroups: number[] | undefined,
  ourGroups: readonly NamedGroup[],
): string | undefined {
  if (clientGroups && clientGroups.some(isFfdheGroup) && !clientGroups.some((g) => ourGroups.some((o) => o.id === g))) {
    return 'client offers only finite-field DH groups, which this server does not accept (RFC 7919 §4)';
  }
  const real = clientSuites.filter((s) => !isSignal(s));
  if (real.length > 0 && real.every((s) => RC4_SUITES.has(s)))
    return 'client offers only RC4 cipher suites (RFC 7465 §2)';
  return undefined;
}
