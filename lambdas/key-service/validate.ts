/**
 * Strict parsing of key-service requests (protocol v2, docs/key-service-protocol.md). Everything the service does not
 * expect is rejected: unknown fields, wrong types, non-canonical base64, wrong digest lengths,
 * oversize values. Error messages name fields and limits, never echo the caller's values.
 */
import { checkServerEcdhParams, MAX_SERVER_ECDH_PARAMS_BYTES } from './ecdh-params';
import {
  KEY_NAME_PATTERN,
  MAX_HANDSHAKE_MESSAGES_BYTES,
  MAX_RSA_CIPHERTEXT_BYTES,
  MAX_RSA_CLIENT_VERSION,
  MIN_RSA_CLIENT_VERSION,
  OPERATIONS,
  PROTOCOL_VERSION,
  REQUEST_ID_PATTERN,
  TLS_RANDOM_LENGTH,
  TLS13_TRANSCRIPT_HASH_LENGTHS,
  SIGNATURE_SCHEMES,
  type ErrorCode,
  type OperationName,
  type SignatureSchemeName,
} from './protocol';
import type { RsaMasterSecretParams } from './rsa-premaster';
import { PRF12_HASHES, type Prf12Hash } from './tls12-prf';

export type ParsedRequest =
  | { op: 'tls13.certificate_verify'; id: string; key: string; scheme: SignatureSchemeName; transcriptHash: Buffer }
  | {
      op: 'tls12.server_key_exchange';
      id: string;
      key: string;
      scheme: SignatureSchemeName;
      clientRandom: Buffer;
      serverRandomSeed: Buffer;
      params: Buffer;
    }
  | ({ op: 'tls12.rsa_master_secret'; id: string; key: string } & RsaMasterSecretParams)
  | { op: 'ticket_keys'; id: string }
  | { op: 'public_key'; id: string; key: string }
  | { op: 'ping'; id: string };

export interface ParseFailure {
  ok: false;
  code: ErrorCode;
  message: string;
  /** The request id when it was well-formed (for echoing), otherwise null. */
  id: string | null;
  /** The op when it was a known operation (for logs), otherwise undefined. */
  op?: OperationName;
  /** The key name when it was well-formed (for logs), otherwise undefined. */
  key?: string;
}

export type ParseResult = { ok: true; request: ParsedRequest } | ParseFailure;

const FIELDS: Record<OperationName, readonly string[]> = {
  'tls13.certificate_verify': ['v', 'id', 'op', 'key', 'scheme', 'transcriptHash'],
  'tls12.server_key_exchange': ['v', 'id', 'op', 'key', 'scheme', 'clientRandom', 'serverRandomSeed', 'params'],
  'tls12.rsa_master_secret': [
    'v',
    'id',
    'op',
    'key',
    'encryptedPreMasterSecret',
    'clientVersion',
    'clientRandom',
    'serverRandom',
    'serverRandomSeed',
    'prfHash',
    'handshakeMessages',
  ],
  ticket_keys: ['v', 'id', 'op'],
  public_key: ['v', 'id', 'op', 'key'],
  ping: ['v', 'id', 'op'],
};

/** base64 length of n bytes. */
const b64Length = (n: number) => 4 * Math.ceil(n / 3);

const MAX_ID_LENGTH = 64;
const MAX_KEY_LENGTH = 64;
const MAX_TOKEN_LENGTH = 64;
/** The longest digest any scheme uses (SHA-512) is 64 bytes: 88 base64 characters. */
const MAX_HASH_B64_LENGTH = 88;

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

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A field name safe to mention in an error message, or a placeholder. */
function fieldLabel(name: string): string {
  return /^[A-Za-z0-9_]{1,32}$/.test(name) ? `"${name}"` : '(unprintable name)';
}

export function parseRequest(event: unknown): ParseResult {
  // What has been validated so far, reported with a failure (id for echoing; op and key for logs).
  const seen: { id: string | null; op?: OperationName; key?: string } = { id: null };
  const fail = (code: ErrorCode, message: string): ParseFailure => ({ ok: false, code, message, ...seen });

  if (!isPlainObject(event)) return fail('bad_request', 'request must be a JSON object');

  // id first, so every later error can echo it.
  if (!('id' in event)) return fail('bad_request', 'id: required');
  const rawId = event.id;
  if (typeof rawId !== 'string') return fail('bad_request', 'id: expected a string');
  if (rawId.length === 0 || rawId.length > MAX_ID_LENGTH) {
    return fail('bad_request', `id: must be 1..${MAX_ID_LENGTH} characters`);
  }
  if (!REQUEST_ID_PATTERN.test(rawId)) return fail('bad_request', 'id: allowed characters are [A-Za-z0-9._:-]');
  const id = rawId;
  seen.id = id;

  if (!('v' in event)) return fail('bad_request', 'v: required');
  const v = event.v;
  if (typeof v !== 'number' || !Number.isInteger(v)) return fail('bad_request', 'v: expected an integer');
  if (v !== PROTOCOL_VERSION) {
    // v1 edges sent tls12.server_key_exchange a server random of their choosing; v2 sends a seed.
    return fail('unsupported', `v: protocol version ${v} not supported (this service speaks v${PROTOCOL_VERSION}): deploy the edge and the key service of the same release`);
  }

  if (!('op' in event)) return fail('bad_request', 'op: required');
  const rawOp = event.op;
  if (typeof rawOp !== 'string') return fail('bad_request', 'op: expected a string');
  if (rawOp.length > MAX_TOKEN_LENGTH || !(OPERATIONS as readonly string[]).includes(rawOp)) {
    return fail('unsupported', `op: unknown operation (supported: ${OPERATIONS.join(', ')})`);
  }
  const op = rawOp as OperationName;
  seen.op = op;

  const allowed = FIELDS[op];
  for (const field of Object.keys(event)) {
    if (!allowed.includes(field)) return fail('bad_request', `unknown field ${fieldLabel(field)} for op ${op}`);
  }

  if (op === 'ping' || op === 'ticket_keys') return { ok: true, request: { op, id } };

  if (!('key' in event)) return fail('bad_request', 'key: required');
  const rawKey = event.key;
  if (typeof rawKey !== 'string') return fail('bad_request', 'key: expected a string');
  if (rawKey.length === 0 || rawKey.length > MAX_KEY_LENGTH) {
    return fail('bad_request', `key: must be 1..${MAX_KEY_LENGTH} characters`);
  }
  if (!KEY_NAME_PATTERN.test(rawKey)) return fail('bad_request', 'key: allowed characters are [A-Za-z0-9._:-]');
  const key = rawKey;
  seen.key = key;

  if (op === 'public_key') return { ok: true, request: { op, id, key } };

  /** A required base64 field of min..max decoded bytes (exact when min = max). */
  const bytesField = (name: string, min: number, max: number): Buffer | ParseFailure => {
    if (!(name in event)) return fail('bad_request', `${name}: required`);
    const raw = event[name];
    if (typeof raw !== 'string') return fail('bad_request', `${name}: expected a base64 string`);
    if (raw.length > b64Length(max)) return fail('bad_request', `${name}: longer than ${max} bytes`);
    const buf = decodeBase64Strict(raw);
    if (buf === undefined) return fail('bad_request', `${name}: not canonical padded base64`);
    if (buf.length < min || buf.length > max) {
      return fail('bad_request', min === max ? `${name}: must be ${min} bytes` : `${name}: must be ${min}..${max} bytes`);
    }
    return buf;
  };

  if (op === 'tls12.rsa_master_secret') {
    const encryptedPreMasterSecret = bytesField('encryptedPreMasterSecret', 1, MAX_RSA_CIPHERTEXT_BYTES);
    if (!Buffer.isBuffer(encryptedPreMasterSecret)) return encryptedPreMasterSecret;
    if (!('clientVersion' in event)) return fail('bad_request', 'clientVersion: required');
    const clientVersion = event.clientVersion;
    if (typeof clientVersion !== 'number' || !Number.isInteger(clientVersion)) return fail('bad_request', 'clientVersion: expected an integer');
    if (clientVersion < MIN_RSA_CLIENT_VERSION || clientVersion > MAX_RSA_CLIENT_VERSION) {
      return fail('bad_request', 'clientVersion: must be 0x0303 (TLS 1.2) .. 0x03ff');
    }
    const clientRandom = bytesField('clientRandom', TLS_RANDOM_LENGTH, TLS_RANDOM_LENGTH);
    if (!Buffer.isBuffer(clientRandom)) return clientRandom;
    const serverRandom = bytesField('serverRandom', TLS_RANDOM_LENGTH, TLS_RANDOM_LENGTH);
    if (!Buffer.isBuffer(serverRandom)) return serverRandom;
    const serverRandomSeed = bytesField('serverRandomSeed', TLS_RANDOM_LENGTH, TLS_RANDOM_LENGTH);
    if (!Buffer.isBuffer(serverRandomSeed)) return serverRandomSeed;
    if (!('prfHash' in event)) return fail('bad_request', 'prfHash: required');
    const prfHash = event.prfHash;
    if (typeof prfHash !== 'string' || !(PRF12_HASHES as readonly string[]).includes(prfHash)) {
      return fail('bad_request', 'prfHash: expected "sha256" or "sha384"');
    }
    let handshakeMessages: Buffer | undefined;
    if ('handshakeMessages' in event) {
      const hm = bytesField('handshakeMessages', 1, MAX_HANDSHAKE_MESSAGES_BYTES);
      if (!Buffer.isBuffer(hm)) return hm;
      handshakeMessages = hm;
    }
    return {
      ok: true,
      request: {
        op,
        id,
        key,
        encryptedPreMasterSecret,
        clientVersion,
        clientRandom,
        serverRandom,
        serverRandomSeed,
        prfHash: prfHash as Prf12Hash,
        ...(handshakeMessages ? { handshakeMessages } : {}),
      },
    };
  }

  // Signing operations: scheme first.
  if (!('scheme' in event)) return fail('bad_request', 'scheme: required');
  const rawScheme = event.scheme;
  if (typeof rawScheme !== 'string') return fail('bad_request', 'scheme: expected a string');
  if (rawScheme.length > MAX_TOKEN_LENGTH || !(SIGNATURE_SCHEMES as readonly string[]).includes(rawScheme)) {
    return fail('unsupported', 'scheme: unknown or unsupported signature scheme');
  }
  const scheme = rawScheme as SignatureSchemeName;

  if (op === 'tls12.server_key_exchange') {
    const clientRandom = bytesField('clientRandom', TLS_RANDOM_LENGTH, TLS_RANDOM_LENGTH);
    if (!Buffer.isBuffer(clientRandom)) return clientRandom;
    const serverRandomSeed = bytesField('serverRandomSeed', TLS_RANDOM_LENGTH, TLS_RANDOM_LENGTH);
    if (!Buffer.isBuffer(serverRandomSeed)) return serverRandomSeed;
    const params = bytesField('params', 1, MAX_SERVER_ECDH_PARAMS_BYTES);
    if (!Buffer.isBuffer(params)) return params;
    const check = checkServerEcdhParams(params);
    if (!check.ok) return fail(check.code, check.message);
    return { ok: true, request: { op, id, key, scheme, clientRandom, serverRandomSeed, params } };
  }

  // tls13.certificate_verify
  if (!('transcriptHash' in event)) return fail('bad_request', 'transcriptHash: required');
  const rawHash = event.transcriptHash;
  if (typeof rawHash !== 'string') return fail('bad_request', 'transcriptHash: expected a base64 string');
  if (rawHash.length > MAX_HASH_B64_LENGTH) {
    return fail('bad_request', `transcriptHash: longer than ${MAX_HASH_B64_LENGTH} base64 characters`);
  }
  const transcriptHash = decodeBase64Strict(rawHash);
  if (transcriptHash === undefined) return fail('bad_request', 'transcriptHash: not canonical padded base64');
  if (!TLS13_TRANSCRIPT_HASH_LENGTHS.includes(transcriptHash.length)) {
    return fail('bad_request', `transcriptHash: ${transcriptHash.length} bytes, but a TLS 1.3 transcript hash is 32 (SHA-256) or 48 (SHA-384) bytes`);
  }
  return { ok: true, request: { op, id, key, scheme, transcriptHash } };
}
