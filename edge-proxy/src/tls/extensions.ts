/** Extension code points and typed parsers for the ClientHello extensions the server reads. */
import { AlertDescription, TlsAlert } from './alerts';
import { Reader, Writer } from './codec';

export enum ExtensionType {
  server_name = 0,
  status_request = 5,
  supported_groups = 10,
  ec_point_formats = 11,
  signature_algorithms = 13,
  alpn = 16,
  signed_certificate_timestamp = 18,
  padding = 21,
  extended_master_secret = 23,
  record_size_limit = 28,
  session_ticket = 35,
  pre_shared_key = 41,
  early_data = 42,
  supported_versions = 43,
  cookie = 44,
  psk_key_exchange_modes = 45,
  certificate_authorities = 47,
  oid_filters = 48,
  post_handshake_auth = 49,
  signature_algorithms_cert = 50,
  key_share = 51,
  renegotiation_info = 0xff01,
}

export interface Extension {
  type: number;
  data: Buffer;
}

/** Parses an extensions block; a repeated type is illegal_parameter (RFC 8446 §4.2). */
export function parseExtensions(r: Reader, what: string): Map<number, Buffer> {
  const block = r.sub16(`${what} extensions`);
  const out = new Map<number, Buffer>();
  let last = -1;
  while (block.remaining > 0) {
    const type = block.u16();
    const data = block.vec16(`extension ${type}`);
    if (out.has(type)) throw new TlsAlert(AlertDescription.illegal_parameter, `duplicate extension ${type} in ${what}`);
    out.set(type, data);
    last = type;
  }
  // RFC 8446 §4.2.11: pre_shared_key MUST be the last extension in the ClientHello.
  if (out.has(ExtensionType.pre_shared_key) && last !== ExtensionType.pre_shared_key) {
    throw new TlsAlert(AlertDescription.illegal_parameter, 'pre_shared_key is not the last extension');
  }
  return out;
}

export function encodeExtensions(exts: Extension[]): Buffer {
  return new Writer()
    .vec16((w) => {
      for (const e of exts) w.u16(e.type).vec16(e.data);
    })
    .finish();
}

/** server_name (RFC 6066 §3): returns the host_name, lower-cased, or undefined. */
export function parseServerName(data: Buffer): string | undefined {
  const r = new Reader(data, 'server_name');
  const list = r.sub16('server_name_list', 1);
  r.end();
  let host: string | undefined;
  while (list.remaining > 0) {
    const nameType = list.u8();
    const name = list.vec16('host_name', 1);
    if (nameType !== 0) continue;
    if (host !== undefined)
      throw new TlsAlert(AlertDescription.illegal_parameter, 'more than one host_name in server_name');
    const s = name.toString('latin1');
    // A HostName is an ASCII DNS name without a trailing dot; reject anything else outright.
    if (!/^[A-Za-z0-9._-]+$/.test(s) || s.endsWith('.')) {
      throw new TlsAlert(AlertDescription.illegal_parameter, 'server_name is not a DNS host name');
    }
    host = s.toLowerCase();
  }
  return host;
}

export function parseU16List(data: Buffer, what: string): number[] {
  const r = new Reader(data, what);
  const list = r.u16List(what);
  r.end();
  return list;
}

/** supported_versions in a ClientHello: a u8-length list of versions. */
export function parseClientSupportedVersions(data: Buffer): number[] {
  const r = new Reader(data, 'supported_versions');
  const v = r.sub8('supported_versions', 2, 254);
  r.end();
  if (v.remaining % 2 !== 0) throw new TlsAlert(AlertDescription.decode_error, 'supported_versions has odd length');
  const out: number[] = [];
  while (v.remaining > 0) out.push(v.u16());
  return out;
}

export interface KeyShareEntry {
  group: number;
  share: Buffer;
}

export function parseClientKeyShares(data: Buffer): KeyShareEntry[] {
  const r = new Reader(data, 'key_share');
  const list = r.sub16('client_shares');
  r.end();
  const out: KeyShareEntry[] = [];
  while (list.remaining > 0) {
    const group = list.u16();
    const share = list.vec16('key_exchange', 1);
    // RFC 8446 §4.2.8: clients MUST NOT offer more than one share for a group.
    if (out.some((e) => e.group === group))
      throw new TlsAlert(AlertDescription.illegal_parameter, `two key shares for group ${group}`);
    out.push({ group, share });
  }
  return out;
}

/** ALPN ProtocolNameList (RFC 7301 §3.1). */
export function parseAlpn(data: Buffer): string[] {
  const r = new Reader(data, 'alpn');
  const list = r.sub16('protocol_name_list', 2);
  r.end();
  const out: string[] = [];
  while (list.remaining > 0) out.push(list.vec8('protocol_name', 1).toString('latin1'));
  return out;
}

export function parsePskModes(data: Buffer): number[] {
  const r = new Reader(data, 'psk_key_exchange_modes');
  const modes = r.sub8('ke_modes', 1);
  r.end();
  const out: number[] = [];
  while (modes.remaining > 0) out.push(modes.u8());
  return out;
}

export function encodeAlpn(protocol: string): Buffer {
  return new Writer().vec16((w) => w.vec8(Buffer.from(protocol, 'latin1'))).finish();
}

export interface OfferedPsks {
  identities: { identity: Buffer; obfuscatedAge: number }[];
  binders: Buffer[];
  /** Bytes of the binders list including its 2-byte length: the tail of the ClientHello it ends. */
  bindersLength: number;
}

/** pre_shared_key in a ClientHello (RFC 8446 §4.2.11). */
export function parseOfferedPsks(data: Buffer): OfferedPsks {
  const r = new Reader(data, 'pre_shared_key');
  const ids = r.sub16('identities', 7);
  const bindersStart = r.offset;
  const bl = r.sub16('binders', 33);
  r.end();
  const identities: OfferedPsks['identities'] = [];
  while (ids.remaining > 0)
    identities.push({ identity: Buffer.from(ids.vec16('identity', 1)), obfuscatedAge: ids.u32() });
  const binders: Buffer[] = [];
  while (bl.remaining > 0) binders.push(Buffer.from(bl.vec8('binder', 32)));
  if (binders.length !== identities.length)
    throw new TlsAlert(AlertDescription.illegal_parameter, 'pre_shared_key: binders and identities differ in number');
  return { identities, binders, bindersLength: data.length - bindersStart };
}
