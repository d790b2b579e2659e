/**
 * The key-service codec (protocol v2, docs/key-service-protocol.md): the one place that turns
 * messages into JSON and back, used by both ends — the key service decodes requests and encodes
 * responses, the edge's client encodes requests and decodes responses.
 *
 * Decoding is strict in both directions: unknown fields, wrong types, non-canonical base64, wrong
 * lengths and oversize values are refused. Error messages name fields and limits, never echo the
 * peer's values (they can hold key-service input the caller should not see in logs).
 */
import { checkServerEcdhParams, MAX_SERVER_ECDH_PARAMS_BYTES } from './ecdh-params';
import {
  ERROR_CODES,
  KEY_NAME_PATTERN,
  MAX_HANDSHAKE_MESSAGES_BYTES,
  MAX_RSA_CIPHERTEXT_BYTES,
  MAX_RSA_CLIENT_VERSION,
  MAX_TICKET_EPOCHS_ACCEPTED,
  MIN_RSA_CLIENT_VERSION,
  OPERATIONS,
  PROTOCOL_VERSION,
  REQUEST_ID_PATTERN,
  TICKET_KEY_LENGTH,
  TLS_RANDOM_LENGTH,
  TLS13_TRANSCRIPT_HASH_LENGTHS,
  SIGNATURE_SCHEMES,
  type Custody,
  type ErrorCode,
  type ErrorResponse,
  type KeyDescription,
  type KeyServiceRequest,
  type MasterSecretResult,
  type OkResponse,
  type OperationName,
  type PingResult,
  type PublicKeyResult,
  type SignatureResult,
  type SignatureSchemeName,
  type TicketKeysResult,
} from './key-service-protocol';
import { decodeBase64Strict } from './strict-base64';
import { MASTER_SECRET_LENGTH, PRF12_HASHES, type Prf12Hash } from './tls12-prf';

/**
 * A message that does not follow the protocol. `code` is the protocol's error code the receiving
 * end answers (or reports) with: `bad_request` or `unsupported` for a request, `internal` for a
 * malformed response, `unsupported` for a response of another protocol version.
 */
export class KeyServiceMessageError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeyServiceMessageError';
  }
}

// ---------------------------------------------------------------------------------------------
// Requests, decoded: binary fields as bytes.
// ---------------------------------------------------------------------------------------------

/** The inputs of TLS 1.2 RSA key exchange (`tls12.rsa_master_secret`), decoded. */
export interface RsaMasterSecretParams {
  encryptedPreMasterSecret: Buffer;
  clientVersion: number;
  clientRandom: Buffer;
  serverRandom: Buffer;
  serverRandomSeed: Buffer;
  prfHash: Prf12Hash;
  handshakeMessages?: Buffer;
}

export type DecodedRequest =
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

export interface RequestDecodeFailure {
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

/** A decoded request, or why it was refused (with what was well-formed, for the answer and logs). */
export type RequestDecodeResult = { ok: true; request: DecodedRequest } | RequestDecodeFailure;

const REQUEST_FIELDS: Record<OperationName, readonly string[]> = {
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

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A field name safe to mention in an error message, or a placeholder. */
function fieldLabel(name: string): string {
  return /^[A-Za-z0-9_]{1,32}$/.test(name) ? `"${name}"` : '(unprintable name)';
}

/** Decode a request as the key service receives it (the Lambda event). Never throws. */
export function decodeRequest(event: unknown): RequestDecodeResult {
  // What has been validated so far, reported with a failure (id for echoing; op and key for logs).
  const seen: { id: string | null; op?: OperationName; key?: string } = { id: null };
  const fail = (code: ErrorCode, message: string): RequestDecodeFailure => ({ ok: false, code, message, ...seen });

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
    return fail(
      'unsupported',
      `v: protocol version ${v} not supported (this service speaks v${PROTOCOL_VERSION}): deploy the edge and the key service of the same release`,
    );
  }

  if (!('op' in event)) return fail('bad_request', 'op: required');
  const rawOp = event.op;
  if (typeof rawOp !== 'string') return fail('bad_request', 'op: expected a string');
  if (rawOp.length > MAX_TOKEN_LENGTH || !(OPERATIONS as readonly string[]).includes(rawOp)) {
    return fail('unsupported', `op: unknown operation (supported: ${OPERATIONS.join(', ')})`);
  }
  const op = rawOp as OperationName;
  seen.op = op;

  const allowed = REQUEST_FIELDS[op];
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
  const bytesField = (name: string, min: number, max: number): Buffer | RequestDecodeFailure => {
    if (!(name in event)) return fail('bad_request', `${name}: required`);
    const raw = event[name];
    if (typeof raw !== 'string') return fail('bad_request', `${name}: expected a base64 string`);
    if (raw.length > b64Length(max)) return fail('bad_request', `${name}: longer than ${max} bytes`);
    const buf = decodeBase64Strict(raw);
    if (buf === undefined) return fail('bad_request', `${name}: not canonical padded base64`);
    if (buf.length < min || buf.length > max) {
      return fail(
        'bad_request',
        min === max ? `${name}: must be ${min} bytes` : `${name}: must be ${min}..${max} bytes`,
      );
    }
    return buf;
  };

  if (op === 'tls12.rsa_master_secret') {
    const encryptedPreMasterSecret = bytesField('encryptedPreMasterSecret', 1, MAX_RSA_CIPHERTEXT_BYTES);
    if (!Buffer.isBuffer(encryptedPreMasterSecret)) return encryptedPreMasterSecret;
    if (!('clientVersion' in event)) return fail('bad_request', 'clientVersion: required');
    const clientVersion = event.clientVersion;
    if (typeof clientVersion !== 'number' || !Number.isInteger(clientVersion))
      return fail('bad_request', 'clientVersion: expected an integer');
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
    return fail(
      'bad_request',
      `transcriptHash: ${transcriptHash.length} bytes, but a TLS 1.3 transcript hash is 32 (SHA-256) or 48 (SHA-384) bytes`,
    );
  }
  return { ok: true, request: { op, id, key, scheme, transcriptHash } };
}

/**
 * Encode a request for the wire. The result is checked with the service's own decoder, so a request
 * the service would refuse fails here, before an invocation is spent on it. Throws
 * KeyServiceMessageError (`bad_request` or `unsupported`, as the service would answer).
 */
export function encodeRequest(request: DecodedRequest): KeyServiceRequest {
  const wire = toWireRequest(request);
  const check = decodeRequest(wire);
  if (!check.ok) throw new KeyServiceMessageError(check.code, check.message);
  return wire;
}

function toWireRequest(request: DecodedRequest): KeyServiceRequest {
  const base = { v: PROTOCOL_VERSION, id: request.id };
  switch (request.op) {
    case 'ping':
    case 'ticket_keys':
      return { ...base, op: request.op };
    case 'public_key':
      return { ...base, op: request.op, key: request.key };
    case 'tls13.certificate_verify':
      return {
        ...base,
        op: request.op,
        key: request.key,
        scheme: request.scheme,
        transcriptHash: b64(request.transcriptHash, 'transcriptHash'),
      };
    case 'tls12.server_key_exchange':
      return {
        ...base,
        op: request.op,
        key: request.key,
        scheme: request.scheme,
        clientRandom: b64(request.clientRandom, 'clientRandom'),
        serverRandomSeed: b64(request.serverRandomSeed, 'serverRandomSeed'),
        params: b64(request.params, 'params'),
      };
    case 'tls12.rsa_master_secret':
      return {
        ...base,
        op: request.op,
        key: request.key,
        encryptedPreMasterSecret: b64(request.encryptedPreMasterSecret, 'encryptedPreMasterSecret'),
        clientVersion: request.clientVersion,
        clientRandom: b64(request.clientRandom, 'clientRandom'),
        serverRandom: b64(request.serverRandom, 'serverRandom'),
        serverRandomSeed: b64(request.serverRandomSeed, 'serverRandomSeed'),
        prfHash: request.prfHash,
        ...(request.handshakeMessages !== undefined
          ? { handshakeMessages: b64(request.handshakeMessages, 'handshakeMessages') }
          : {}),
      };
  }
}

function b64(bytes: unknown, name: string): string {
  if (!Buffer.isBuffer(bytes)) throw new KeyServiceMessageError('bad_request', `${name}: expected bytes (a Buffer)`);
  return bytes.toString('base64');
}

// ---------------------------------------------------------------------------------------------
// Responses. Each operation's result, decoded (binary fields as bytes) and as sent.
// ---------------------------------------------------------------------------------------------

export interface DecodedTicketKey {
  epoch: number;
  key: Buffer;
}

export interface DecodedTicketKeys {
  epochSeconds: number;
  current: DecodedTicketKey;
  previous: DecodedTicketKey;
  /** How many epochs are accepted (current included); sent only when more than 2. */
  epochsAccepted?: number;
  /** Keys of epochs current-2 .. current-(epochsAccepted-1), newest first. */
  older?: DecodedTicketKey[];
}

export interface DecodedResults {
  'tls13.certificate_verify': { signature: Buffer; backendMs: number };
  'tls12.server_key_exchange': { signature: Buffer; backendMs: number };
  'tls12.rsa_master_secret': { masterSecret: Buffer; backendMs: number };
  ticket_keys: DecodedTicketKeys;
  public_key: { spki: Buffer; keySpec: string };
  ping: PingResult;
}

export interface WireResults {
  'tls13.certificate_verify': SignatureResult;
  'tls12.server_key_exchange': SignatureResult;
  'tls12.rsa_master_secret': MasterSecretResult;
  ticket_keys: TicketKeysResult;
  public_key: PublicKeyResult;
  ping: PingResult;
}

/** Encode one operation's result for the wire (the caller wipes any secret bytes afterwards). */
export function encodeResult<O extends OperationName>(op: O, result: DecodedResults[O]): WireResults[O] {
  return RESULT_ENCODERS[op](result) as WireResults[O];
}

const wireTicketKey = (k: DecodedTicketKey) => ({ epoch: k.epoch, key: k.key.toString('base64') });

const RESULT_ENCODERS: { [O in OperationName]: (r: DecodedResults[O]) => WireResults[O] } = {
  'tls13.certificate_verify': (r) => ({ signature: r.signature.toString('base64'), backendMs: r.backendMs }),
  'tls12.server_key_exchange': (r) => ({ signature: r.signature.toString('base64'), backendMs: r.backendMs }),
  'tls12.rsa_master_secret': (r) => ({ masterSecret: r.masterSecret.toString('base64'), backendMs: r.backendMs }),
  // epochsAccepted and older only when more than two epochs are accepted, so the default answer
  // keeps the shape every edge version reads (docs/key-service-protocol.md, "Session-ticket keys").
  ticket_keys: (r) => ({
    epochSeconds: r.epochSeconds,
    current: wireTicketKey(r.current),
    previous: wireTicketKey(r.previous),
    ...(r.epochsAccepted !== undefined && r.epochsAccepted > 2
      ? { epochsAccepted: r.epochsAccepted, older: (r.older ?? []).map(wireTicketKey) }
      : {}),
  }),
  public_key: (r) => ({ spki: r.spki.toString('base64'), keySpec: r.keySpec }),
  ping: (r) => r,
};

export function encodeOkResponse<T>(id: string, result: T): OkResponse<T> {
  return { v: PROTOCOL_VERSION, id, ok: true, result };
}

export function encodeErrorResponse(id: string | null, code: ErrorCode, message: string): ErrorResponse {
  return { v: PROTOCOL_VERSION, id, ok: false, error: { code, message } };
}

/** A decoded response: the operation's result, or the service's typed refusal (message made printable). */
export type DecodedResponse<O extends OperationName> =
  { ok: true; result: DecodedResults[O] } | { ok: false; code: ErrorCode; message: string };

/**
 * Decode the response to `request` (as the edge receives it from the service). Throws
 * KeyServiceMessageError: `unsupported` for another protocol version, `internal` for anything
 * malformed (wrong id, unexpected or missing fields, non-canonical base64, wrong lengths).
 */
export function decodeResponse<O extends OperationName>(
  request: { op: O; id: string },
  response: unknown,
): DecodedResponse<O> {
  if (!isObject(response) || typeof response.ok !== 'boolean') throw malformed();
  if (response.v !== PROTOCOL_VERSION) {
    // A key service of another release: it refuses our requests (or we its answers) as a whole.
    const theirs =
      typeof response.v === 'number' && Number.isInteger(response.v) ? `v${response.v}` : 'an unknown version';
    throw new KeyServiceMessageError(
      'unsupported',
      `key service speaks protocol ${theirs}, this edge v${PROTOCOL_VERSION}: deploy the edge and the key service of the same release`,
    );
  }
  if (response.ok === false) {
    const error = response.error;
    if (
      !isObject(error) ||
      typeof error.code !== 'string' ||
      !(ERROR_CODES as readonly string[]).includes(error.code)
    ) {
      throw new KeyServiceMessageError('internal', 'malformed key-service error response');
    }
    return {
      ok: false,
      code: error.code as ErrorCode,
      message: typeof error.message === 'string' ? printable(error.message) : '',
    };
  }
  if (response.id !== request.id)
    throw new KeyServiceMessageError('internal', 'key-service response id does not match the request');
  if (!isObject(response.result)) throw malformed('result');
  return { ok: true, result: RESULT_DECODERS[request.op](response.result) as DecodedResults[O] };
}

/** Largest signature any supported key produces (RSA-4096: 512 bytes; DER ECDSA P-521: ≤ 139). */
const MAX_SIGNATURE_BYTES = 512;
/** Largest SubjectPublicKeyInfo of a supported key (RSA-4096: 550 bytes), with room. */
const MAX_SPKI_BYTES = 2048;
const MAX_KEY_SPEC_LENGTH = 64;
const MAX_VERSION_LENGTH = 64;
const CUSTODIES: readonly Custody[] = ['kms', 'sealed', 'file'];

const RESULT_DECODERS: { [O in OperationName]: (r: Record<string, unknown>) => DecodedResults[O] } = {
  'tls13.certificate_verify': decodeSignatureResult,
  'tls12.server_key_exchange': decodeSignatureResult,
  'tls12.rsa_master_secret': (r) => {
    exactFields(r, ['masterSecret', 'backendMs']);
    const masterSecret = bytes(r, 'masterSecret', MASTER_SECRET_LENGTH, MASTER_SECRET_LENGTH);
    return { masterSecret, backendMs: backendMs(r) };
  },
  ticket_keys: decodeTicketKeys,
  public_key: (r) => {
    exactFields(r, ['spki', 'keySpec']);
    return { spki: bytes(r, 'spki', 1, MAX_SPKI_BYTES), keySpec: token(r, 'keySpec', MAX_KEY_SPEC_LENGTH) };
  },
  ping: decodePing,
};

function decodeSignatureResult(r: Record<string, unknown>): { signature: Buffer; backendMs: number } {
  exactFields(r, ['signature', 'backendMs']);
  return { signature: bytes(r, 'signature', 1, MAX_SIGNATURE_BYTES), backendMs: backendMs(r) };
}

function decodeTicketKeys(r: Record<string, unknown>): DecodedTicketKeys {
  // epochsAccepted and older come only when more than two epochs are accepted.
  const extended = 'epochsAccepted' in r;
  exactFields(
    r,
    extended
      ? ['epochSeconds', 'current', 'previous', 'epochsAccepted', 'older']
      : ['epochSeconds', 'current', 'previous'],
  );
  const epochSeconds = r.epochSeconds;
  if (typeof epochSeconds !== 'number' || !Number.isSafeInteger(epochSeconds) || epochSeconds <= 0)
    throw malformed('epochSeconds');
  const current = ticketKey(r.current, 'current');
  const previous = ticketKey(r.previous, 'previous');
  if (previous.epoch !== current.epoch - 1) throw malformed('previous epoch must be current - 1');
  if (!extended) {
    if (previous.key.equals(current.key)) throw malformed('current and previous ticket keys are equal');
    return { epochSeconds, current, previous };
  }
  const epochsAccepted = r.epochsAccepted;
  if (
    typeof epochsAccepted !== 'number' ||
    !Number.isSafeInteger(epochsAccepted) ||
    epochsAccepted < 3 ||
    epochsAccepted > MAX_TICKET_EPOCHS_ACCEPTED
  ) {
    throw malformed('epochsAccepted');
  }
  if (!Array.isArray(r.older) || r.older.length !== epochsAccepted - 2)
    throw malformed('older must hold epochsAccepted - 2 keys');
  const older = r.older.map((k: unknown, i: number) => ticketKey(k, `older[${i}]`));
  const all = [current, previous, ...older];
  all.forEach((k, i) => {
    if (k.epoch !== current.epoch - i) throw malformed('ticket-key epochs must count down from current');
    if (all.some((o, j) => j !== i && o.key.equals(k.key))) throw malformed('ticket keys of two epochs are equal');
  });
  return { epochSeconds, current, previous, epochsAccepted, older };
}

function ticketKey(v: unknown, name: string): DecodedTicketKey {
  if (!isObject(v)) throw malformed(name);
  exactFields(v, ['epoch', 'key'], name);
  const epoch = v.epoch;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) throw malformed(`${name}.epoch`);
  return { epoch, key: bytes(v, 'key', TICKET_KEY_LENGTH, TICKET_KEY_LENGTH, name) };
}

function decodePing(r: Record<string, unknown>): PingResult {
  exactFields(
    r,
    'keyPattern' in r
      ? ['service', 'protocol', 'version', 'keys', 'keyPattern']
      : ['service', 'protocol', 'version', 'keys'],
  );
  if (r.service !== 'keyless-key-service' || r.protocol !== PROTOCOL_VERSION) throw malformed('ping');
  const version = token(r, 'version', MAX_VERSION_LENGTH);
  if (!Array.isArray(r.keys)) throw malformed('keys');
  const keys = r.keys.map((k: unknown): KeyDescription => {
    if (
      !isObject(k) ||
      typeof k.name !== 'string' ||
      typeof k.keySpec !== 'string' ||
      !(CUSTODIES as readonly unknown[]).includes(k.custody)
    ) {
      throw malformed('keys');
    }
    exactFields(k, ['name', 'custody', 'keySpec'], 'keys');
    return { name: k.name, custody: k.custody as Custody, keySpec: k.keySpec };
  });
  if (!('keyPattern' in r)) return { service: 'keyless-key-service', protocol: PROTOCOL_VERSION, version, keys };
  const p = r.keyPattern;
  if (!isObject(p) || p.name !== '*' || p.custody !== 'kms' || typeof p.aliasPrefix !== 'string')
    throw malformed('keyPattern');
  exactFields(p, ['name', 'custody', 'aliasPrefix'], 'keyPattern');
  return {
    service: 'keyless-key-service',
    protocol: PROTOCOL_VERSION,
    version,
    keys,
    keyPattern: { name: '*', custody: 'kms', aliasPrefix: p.aliasPrefix },
  };
}

function malformed(what?: string): KeyServiceMessageError {
  return new KeyServiceMessageError(
    'internal',
    what ? `malformed key-service response: ${what}` : 'malformed key-service response',
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A result must carry exactly these fields (the service never adds secrets we would not expect). */
function exactFields(o: Record<string, unknown>, names: readonly string[], where?: string): void {
  const keys = Object.keys(o);
  if (keys.length !== names.length || !keys.every((k) => names.includes(k))) {
    throw malformed(`${where ? `${where}: ` : ''}expected fields ${names.join(', ')}`);
  }
}

/** A canonical base64 field of min..max decoded bytes. */
function bytes(o: Record<string, unknown>, name: string, min: number, max: number, where?: string): Buffer {
  const label = where ? `${where}.${name}` : name;
  const v = o[name];
  if (typeof v !== 'string' || v.length > b64Length(max)) throw malformed(label);
  const buf = decodeBase64Strict(v);
  if (buf === undefined) throw malformed(`${label} is not canonical base64`);
  if (buf.length < min || buf.length > max)
    throw malformed(min === max ? `${label} must be ${min} bytes` : `${label} length`);
  return buf;
}

function token(o: Record<string, unknown>, name: string, maxLength: number): string {
  const v = o[name];
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength) throw malformed(name);
  return v;
}

function backendMs(o: Record<string, unknown>): number {
  const v = o.backendMs;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw malformed('backendMs');
  return v;
}

/** Keep a service-provided message printable and short before it reaches logs and alerts. */
function printable(message: string): string {
  return message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
