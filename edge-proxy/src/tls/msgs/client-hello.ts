/**
 * The ClientHello, parsed once into typed fields (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). One strict
 * decoder reads every extension the server interprets: exact lengths, no trailing bytes, empty
 * where the RFC says empty — any violation is `decode_error` — and the structural rules of the
 * extensions block: a repeated extension is `illegal_parameter` (RFC 8446 §4.2), and so is
 * `pre_shared_key` anywhere but last (§4.2.11). Extensions we do not interpret are kept raw and
 * otherwise ignored (§4.1.2).
 */
import { AlertDescription, TlsAlert } from '../alerts';
import { Reader } from '../codec';
import {
  ExtensionType,
  KeyShareEntry,
  OfferedPsks,
  parseAlpn,
  parseClientKeyShares,
  parseClientSupportedVersions,
  parseExtensions,
  parseOfferedPsks,
  parsePskModes,
  parseServerName,
  parseU16List,
} from '../extensions';

export interface ClientHello {
  legacyVersion: number;
  random: Buffer;
  sessionId: Buffer;
  cipherSuites: number[];
  compressionMethods: Buffer;
  /** Every extension's raw body by type (what a retried ClientHello is compared with). */
  extensions: Map<number, Buffer>;
  /** server_name's host_name, lower-cased (RFC 6066 §3). */
  serverName?: string;
  /** supported_versions (RFC 8446 §4.2.1). */
  supportedVersions?: number[];
  /** supported_groups (RFC 8446 §4.2.7, RFC 8422 §5.1.1). */
  supportedGroups?: number[];
  /** signature_algorithms (RFC 8446 §4.2.3). */
  signatureAlgorithms?: number[];
  /** key_share: group and opaque key_exchange bytes; each group's rules are checked in groups.ts (§4.2.8). */
  keyShares?: KeyShareEntry[];
  /** application_layer_protocol_negotiation (RFC 7301 §3.1). */
  alpn?: string[];
  /** pre_shared_key (RFC 8446 §4.2.11). */
  psk?: OfferedPsks;
  /** psk_key_exchange_modes (RFC 8446 §4.2.9). */
  pskModes?: number[];
  /** record_size_limit (RFC 8449 §4): at least 64. */
  recordSizeLimit?: number;
  /** status_request with status_type ocsp (RFC 6066 §8). */
  wantsOcsp: boolean;
  /** extended_master_secret (RFC 7627 §5.1): present and empty. */
  extendedMasterSecret: boolean;
  /** renegotiation_info's renegotiated_connection (RFC 5746 §3.2); empty in an initial handshake. */
  renegotiationInfo?: Buffer;
  /** SessionTicket (RFC 5077 §3.2): empty asks for a ticket, non-empty presents one. */
  sessionTicket?: Buffer;
  /** early_data (RFC 8446 §4.2.10): present and empty. */
  earlyData: boolean;
  /** ec_point_formats (RFC 8422 §5.1.2). */
  ecPointFormats?: number[];
}

type Typed = Omit<
  ClientHello,
  'legacyVersion' | 'random' | 'sessionId' | 'cipherSuites' | 'compressionMethods' | 'extensions'
>;

/** A body that must be empty (RFC 7627 §5.1, RFC 8446 §4.2.10). */
function empty(data: Buffer, name: string): true {
  if (data.length !== 0) throw new TlsAlert(AlertDescription.decode_error, `${name} extension must be empty`);
  return true;
}

function u16(data: Buffer, name: string): number {
  const r = new Reader(data, name);
  const v = r.u16();
  r.end();
  return v;
}

function vec8(data: Buffer, name: string, min = 0): Buffer {
  const r = new Reader(data, name);
  const v = r.vec8(name, min);
  r.end();
  return v;
}

/** status_request (RFC 6066 §8): other status types are ignored, their request is opaque to us. */
function statusRequestIsOcsp(data: Buffer): boolean {
  const r = new Reader(data, 'status_request');
  if (r.u8() !== 1) return false;
  r.vec16('responder_id_list');
  r.vec16('request_extensions');
  r.end();
  return true;
}

function recordSizeLimit(data: Buffer): number {
  const limit = u16(data, 'record_size_limit');
  if (limit < 64)
    throw new TlsAlert(AlertDescription.illegal_parameter, `record_size_limit ${limit} is below the minimum of 64`);
  return limit;
}

/** The decoder for each extension the server interprets, and where its result goes. */
const DECODERS: ReadonlyMap<number, (data: Buffer, into: Typed) => void> = new Map<
  number,
  (data: Buffer, into: Typed) => void
>([
  [ExtensionType.server_name, (d, h) => (h.serverName = parseServerName(d))],
  [ExtensionType.status_request, (d, h) => (h.wantsOcsp = statusRequestIsOcsp(d))],
  [ExtensionType.supported_groups, (d, h) => (h.supportedGroups = parseU16List(d, 'supported_groups'))],
  [ExtensionType.ec_point_formats, (d, h) => (h.ecPointFormats = [...vec8(d, 'ec_point_formats', 1)])],
  [ExtensionType.signature_algorithms, (d, h) => (h.signatureAlgorithms = parseU16List(d, 'signature_algorithms'))],
  [ExtensionType.alpn, (d, h) => (h.alpn = parseAlpn(d))],
  [ExtensionType.extended_master_secret, (d, h) => (h.extendedMasterSecret = empty(d, 'extended_master_secret'))],
  [ExtensionType.record_size_limit, (d, h) => (h.recordSizeLimit = recordSizeLimit(d))],
  [ExtensionType.session_ticket, (d, h) => (h.sessionTicket = d)],
  [ExtensionType.pre_shared_key, (d, h) => (h.psk = parseOfferedPsks(d))],
  [ExtensionType.early_data, (d, h) => (h.earlyData = empty(d, 'early_data'))],
  [ExtensionType.supported_versions, (d, h) => (h.supportedVersions = parseClientSupportedVersions(d))],
  [ExtensionType.psk_key_exchange_modes, (d, h) => (h.pskModes = parsePskModes(d))],
  [ExtensionType.key_share, (d, h) => (h.keyShares = parseClientKeyShares(d))],
  [ExtensionType.renegotiation_info, (d, h) => (h.renegotiationInfo = vec8(d, 'renegotiated_connection'))],
]);

/** The extension types the server interprets (each has a strict decoder). */
export const INTERPRETED_EXTENSIONS: readonly number[] = [...DECODERS.keys()];

export function parseClientHello(body: Buffer): ClientHello {
  const r = new Reader(body, 'ClientHello');
  const legacyVersion = r.u16();
  const random = r.bytes(32);
  const sessionId = r.vec8('legacy_session_id', 0, 32);
  const cipherSuites = r.u16List('cipher_suites');
  const compressionMethods = r.vec8('legacy_compression_methods', 1);
  // RFC 5246 §7.4.1.2: the extensions block may be absent altogether.
  const extensions = r.remaining > 0 ? parseExtensions(r, 'ClientHello') : new Map<number, Buffer>();
  r.end();
  const typed: Typed = { wantsOcsp: false, extendedMasterSecret: false, earlyData: false };
  for (const [type, data] of extensions) DECODERS.get(type)?.(data, typed);
  return { legacyVersion, random, sessionId, cipherSuites, compressionMethods, extensions, ...typed };
}
