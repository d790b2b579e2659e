/**
 * The few pieces of an X.509 certificate that node:crypto's `X509Certificate` does not expose, read
 * straight from the DER (RFC 5280 §4.1): the subject Name as encoded (for the `certificate_authorities`
 * lists of a CertificateRequest, RFC 8446 §4.2.4 / RFC 5246 §7.4.4), the KeyUsage bits (§4.2.1.3),
 * basicConstraints' pathLenConstraint (§4.2.1.9), and an RFC 4514 string form of a Name for headers. Everything else (signatures, validity, SANs,
 * extended key usage, basicConstraints) comes from `X509Certificate`.
 *
 * Malformed input throws `DerError`; callers turn it into the alert or configuration error that fits.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(`malformed certificate: ${message}`);
    this.name = 'DerError';
  }
}

interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the contents. */
  body: number;
  /** Offset just after the contents. */
  end: number;
}

function readTlv(buf: Buffer, off: number, limit = buf.length): Tlv {
  if (off + 2 > limit) throw new DerError('truncated element');
  const tag = buf[off];
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in certificates');
  let len = buf[off + 1];
  let body = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // Definite lengths only (DER), at most 4 length bytes: no certificate is anywhere near 4 GiB.
    if (n === 0 || n > 4 || body + n > limit) throw new DerError('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[body + i];
    body += n;
  }
  const end = body + len;
  if (end > limit) throw new DerError('element overruns its container');
  return { tag, start: off, body, end };
}

/** The elements inside a constructed element. */
function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = parent.body; off < parent.end;) {
    const t = readTlv(buf, off, parent.end);
    out.push(t);
    off = t.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const SET = 0x31;

/** tbsCertificate's fields in order, with the optional `[0] version` skipped. */
function tbsFields(der: Buffer): { buf: Buffer; fields: Tlv[] } {
  const cert = readTlv(der, 0);
  if (cert.tag !== SEQUENCE || cert.end !== der.length) throw new DerError('not a DER SEQUENCE');
  const [tbs] = children(der, cert);
  if (!tbs || tbs.tag !== SEQUENCE) throw new DerError('no tbsCertificate');
  const fields = children(der, tbs);
  return { buf: der, fields: fields[0]?.tag === 0xa0 ? fields.slice(1) : fields };
}

/** The subject Name exactly as encoded (a DistinguishedName in TLS terms). */
export function subjectDer(der: Buffer): Buffer {
  // serialNumber, signature, issuer, validity, subject
  const { fields } = tbsFields(der);
  const subject = fields[4];
  if (!subject || subject.tag !== SEQUENCE) throw new DerError('no subject');
  return Buffer.from(der.subarray(subject.start, subject.end));
}

/** Dotted form of an OBJECT IDENTIFIER's contents. */
function oidString(b: Buffer): string {
  if (b.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join('.');
}

const KEY_USAGE_OID = '2.5.29.15';
const BASIC_CONSTRAINTS_OID = '2.5.29.19';

/** The value (OCTET STRING contents) of the extension with this OID, or undefined. */
function extensionValue(der: Buffer, oid: string): Tlv | undefined {
  const { fields } = tbsFields(der);
  const exts = fields.find((f) => f.tag === 0xa3);
  if (!exts) return undefined;
  const [list] = children(der, exts);
  if (!list || list.tag !== SEQUENCE) throw new DerError('bad extensions');
  for (const ext of children(der, list)) {
    const parts = children(der, ext);
    if (parts[0]?.tag !== 0x06 || oidString(der.subarray(parts[0].body, parts[0].end)) !== oid) continue;
    const value = parts[parts.length - 1];
    if (value.tag !== 0x04) throw new DerError(`bad extension ${oid}`);
    return readTlv(der, value.body, value.end);
  }
  return undefined;
}

/** basicConstraints pathLenConstraint (RFC 5280 §4.2.1.9), or undefined when there is none. */
export function pathLenConstraint(der: Buffer): number | undefined {
  const bc = extensionValue(der, BASIC_CONSTRAINTS_OID);
  if (!bc) return undefined;
  if (bc.tag !== SEQUENCE) throw new DerError('bad basicConstraints');
  const len = children(der, bc).find((t) => t.tag === 0x02);
  if (!len) return undefined;
  if (len.end - len.body > 4 || (der[len.body] & 0x80) !== 0) throw new DerError('bad pathLenConstraint');
  let v = 0;
  for (let i = len.body; i < len.end; i++) v = v * 256 + der[i];
  return v;
}

/**
 * KeyUsage bits (RFC 5280 §4.2.1.3), bit 0 = digitalSignature, or undefined when the certificate has
 * no KeyUsage extension (then every usage is allowed).
 */
export function keyUsageBits(der: Buffer): { digitalSignature: boolean; keyCertSign: boolean } | undefined {
  const bits = extensionValue(der, KEY_USAGE_OID);
  if (!bits) return undefined;
  if (bits.tag !== 0x03 || bits.end - bits.body < 1) throw new DerError('bad KeyUsage BIT STRING');
  const first = bits.end - bits.body > 1 ? der[bits.body + 1] : 0;
  return { digitalSignature: (first & 0x80) !== 0, keyCertSign: (first & 0x04) !== 0 };
}

/** Short names of RFC 4514 §3 (and emailAddress, as OpenSSL prints it). */
const ATTRIBUTE_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

function decodeString(tag: number, b: Buffer): string | undefined {
  switch (tag) {
    case 0x0c: // UTF8String
    case 0x13: // PrintableString
    case 0x16: // IA5String
      return b.toString('utf8');
    case 0x14: // TeletexString: in practice Latin-1
      return b.toString('latin1');
    case 0x1e: {
      // BMPString: UCS-2 big-endian
      if (b.length % 2) return undefined;
      const le = Buffer.from(b);
      le.swap16();
      return le.toString('utf16le');
    }
    default:
      return undefined;
  }
}

/**
 * RFC 4514 §2.4 escaping, plus every byte outside printable ASCII as `\XX` (UTF-8), so the result is
 * always safe in an HTTP header.
 */
function escapeValue(v: string): string {
  const bytes = Buffer.from(v, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    const ch = String.fromCharCode(c);
    if (c < 0x20 || c > 0x7e) out += `\\${c.toString(16).toUpperCase().padStart(2, '0')}`;
    else if ('"+,;<>\\'.includes(ch)) out += `\\${ch}`;
    else if ((i === 0 && (ch === ' ' || ch === '#')) || (i === bytes.length - 1 && ch === ' ')) out += `\\${ch}`;
    else out += ch;
  }
  return out;
}

/** RFC 4514 string of a DER Name: last RDN first, `,` between RDNs, `+` inside a multi-valued one. */
export function nameToString(nameDer: Buffer): string {
  const name = readTlv(nameDer, 0);
  if (name.tag !== SEQUENCE) throw new DerError('Name is not a SEQUENCE');
  const rdns: string[] = [];
  for (const rdn of children(nameDer, name)) {
    if (rdn.tag !== SET) throw new DerError('RDN is not a SET');
    const avas: string[] = [];
    for (const ava of children(nameDer, rdn)) {
      const [type, value] = children(nameDer, ava);
      if (type?.tag !== 0x06 || !value) throw new DerError('bad AttributeTypeAndValue');
      const oid = oidString(nameDer.subarray(type.body, type.end));
      const text = decodeString(value.tag, nameDer.subarray(value.body, value.end));
      // Unknown string types are written as `#` + hex of the whole element (RFC 4514 §2.4).
      const rendered =
        text === undefined ? `#${nameDer.subarray(value.start, value.end).toString('hex')}` : escapeValue(text);
      avas.push(`${ATTRIBUTE_NAMES[oid] ?? oid}=${rendered}`);
    }
    rdns.push(avas.join('+'));
  }
  return rdns.reverse().join(',');
}

/** RFC 4514 string of a certificate's subject. */
export function subjectString(der: Buffer): string {
  return nameToString(subjectDer(der));
}
