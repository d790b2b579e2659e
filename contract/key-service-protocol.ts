/**
 * Key-service protocol, version 2 (docs/key-service-protocol.md): JSON over Lambda Invoke, shared by
 * the key service (which validates every request strictly) and the edge client (which builds them).
 *
 * The key service builds every byte string it signs itself from these inputs, so it can never be used
 * as a general signing oracle. Binary fields are base64 (standard alphabet, with padding).
 *
 * Version 2 changed one operation: `tls12.server_key_exchange` takes a seed and derives the server
 * random itself (v1 took the server random from the caller). The edge and the key service of one
 * release speak the same version; a request of any other version is refused as `unsupported`, so a
 * mismatched pair fails loudly instead of producing signatures the other side does not expect.
 */

import * as crypto from 'node:crypto';

import {
  SCHEME_HASH,
  SCHEME_TO_KMS_ALGORITHM,
  schemeMatchesKeySpec,
  SIGNATURE_SCHEME_NAMES,
  TLS13_SCHEME_NAMES,
  type SignatureSchemeName,
} from './signature-schemes';

export const PROTOCOL_VERSION = 2 as const;

/**
 * TLS SignatureScheme names (RFC 8446 §4.2.3) the service can serve, with their hash, KMS algorithm and
 * key specs: all from the one table in signature-schemes.ts. No SHA-1, ever (RFC 9155).
 */
export const SIGNATURE_SCHEMES: readonly SignatureSchemeName[] = SIGNATURE_SCHEME_NAMES;
export { SCHEME_HASH, SCHEME_TO_KMS_ALGORITHM, schemeMatchesKeySpec, type SignatureSchemeName };

export const OPERATIONS = [
  'tls13.certificate_verify',
  'tls12.server_key_exchange',
  'tls12.rsa_master_secret',
  'ticket_keys',
  'public_key',
  'ping',
] as const;
export type OperationName = (typeof OPERATIONS)[number];

export const ERROR_CODES = [
  'unknown_key',
  'bad_request',
  'unsupported',
  'throttled',
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export type Custody = 'kms' | 'sealed' | 'file';

/** Common envelope of every request. `key` is a configured key *name*, never a raw ARN. */
interface RequestBase {
  v: typeof PROTOCOL_VERSION;
  /** Request id chosen by the caller, echoed in the response; 1..64 chars of [A-Za-z0-9._:-]. */
  id: string;
}

export interface CertificateVerifyRequest extends RequestBase {
  op: 'tls13.certificate_verify';
  key: string;
  scheme: SignatureSchemeName;
  /**
   * Transcript-Hash(ClientHello..Certificate), base64. It is computed with the *cipher suite's* hash
   * (SHA-256 or SHA-384 in TLS 1.3), independent of the signature scheme, which hashes the whole
   * CertificateVerify content again with its own hash (RFC 8446 §4.4.1, §4.4.3).
   */
  transcriptHash: string;
}

export interface PublicKeyRequest extends RequestBase {
  op: 'public_key';
  key: string;
}

export interface PingRequest extends RequestBase {
  op: 'ping';
}

/**
 * TLS 1.2 ServerKeyExchange signature (RFC 8422 §5.4, RFC 5246 §7.4.3). The service validates
 * `params` (ServerECDHParams: curve_type named_curve(3), a named curve it supports, and a
 * well-formed public point for that curve), derives the server random from `serverRandomSeed`
 * (`tls12ServerRandom`: SHA-256(seed)[0..24] ‖ the TLS 1.3 downgrade sentinel) and signs
 * `clientRandom ‖ serverRandom ‖ params`. Only the client random is the caller's choice; the
 * server random is a hash output it cannot steer, and params are a point on a named curve.
 * Schemes: rsa_pkcs1_sha256/384/512, rsa_pss_rsae_*, ecdsa_* — never SHA-1.
 */
export interface ServerKeyExchangeRequest extends RequestBase {
  op: 'tls12.server_key_exchange';
  key: string;
  scheme: SignatureSchemeName;
  /** 32 bytes, base64. */
  clientRandom: string;
  /** 32 bytes, base64: the seed S behind ServerHello.random (`tls12ServerRandom(S)`). */
  serverRandomSeed: string;
  /** ServerECDHParams as sent on the wire, base64. */
  params: string;
}

/**
 * TLS 1.2 RSA key exchange (`sealed`/`file` custody only). The edge forwards the client's
 * EncryptedPreMasterSecret; the service decrypts it with implicit rejection (RFC 5246 §7.4.7.1: on
 * any padding, length or version error a synthetic premaster derived from the ciphertext is used),
 * derives the master secret (RFC 5246 §8.1, or RFC 7627 §4 with EMS) and returns only that.
 *
 * Freshness: the edge's ServerHello.random must be `SHA-256(serverRandomSeed)[0..24] ‖ 8 bytes`
 * (the last 8 carry the TLS 1.3 downgrade sentinel), so a compromised edge cannot replay a
 * recorded handshake's ClientKeyExchange through the service (it cannot find a seed for an old
 * server random).
 */
export interface RsaMasterSecretRequest extends RequestBase {
  op: 'tls12.rsa_master_secret';
  key: string;
  /** The RSA ciphertext (EncryptedPreMasterSecret contents, without the u16 length), base64. */
  encryptedPreMasterSecret: string;
  /** ClientHello.client_version (e.g. 0x0303), checked against the premaster's first two bytes. */
  clientVersion: number;
  /** 32 bytes, base64. */
  clientRandom: string;
  /** 32 bytes, base64: the ServerHello.random that was sent. */
  serverRandom: string;
  /** 32 bytes, base64: the seed S behind serverRandom. */
  serverRandomSeed: string;
  /** PRF hash of the negotiated suite. */
  prfHash: 'sha256' | 'sha384';
  /**
   * With extended master secret (RFC 7627): every handshake message from ClientHello up to and
   * including ClientKeyExchange, concatenated as sent, base64. The service checks that the
   * ServerHello in it carries `serverRandom` and the ClientKeyExchange carries this ciphertext,
   * then hashes it itself for the session hash. Absent without EMS.
   */
  handshakeMessages?: string;
}

/** Fleet-wide session-ticket keys of every accepted epoch (docs/key-service-protocol.md, "Session-ticket keys"). */
export interface TicketKeysRequest extends RequestBase {
  op: 'ticket_keys';
}

export type KeyServiceRequest =
  | CertificateVerifyRequest
  | ServerKeyExchangeRequest
  | RsaMasterSecretRequest
  | TicketKeysRequest
  | PublicKeyRequest
  | PingRequest;

export interface KeyDescription {
  name: string;
  custody: Custody;
  /** e.g. RSA_2048, ECC_NIST_P256 (KMS KeySpec vocabulary). */
  keySpec: string;
}

export interface SignatureResult {
  /** The signature, base64: for RSA-PSS/PKCS#1 the raw signature, for ECDSA the DER encoding (what TLS sends). */
  signature: string;
  /** Milliseconds the backend (KMS, or the in-memory key) took. */
  backendMs: number;
}

export interface MasterSecretResult {
  /** 48 bytes, base64: the master secret of this one session (never the premaster). */
  masterSecret: string;
  backendMs: number;
}

export interface TicketKey {
  /** Epoch number: floor(unix seconds / epochSeconds). */
  epoch: number;
  /** 32 bytes, base64. */
  key: string;
}

export interface TicketKeysResult {
  epochSeconds: number;
  current: TicketKey;
  previous: TicketKey;
  /**
   * Only when more than two epochs are accepted (so the default answer keeps the shape every edge
   * version reads): how many, and the keys of epochs current-2 .. current-(epochsAccepted-1),
   * newest first. Absent: two (current and previous).
   */
  epochsAccepted?: number;
  older?: TicketKey[];
}

export interface PublicKeyResult {
  /** DER SubjectPublicKeyInfo, base64. */
  spki: string;
  keySpec: string;
}

export interface PingResult {
  service: 'keyless-key-service';
  protocol: typeof PROTOCOL_VERSION;
  version: string;
  /** The configured key names (names resolved by `keyPattern` are not listed). */
  keys: KeyDescription[];
  /** Present when other names resolve by KMS alias: name N is the key `<aliasPrefix>N`. */
  keyPattern?: { name: '*'; custody: 'kms'; aliasPrefix: string };
}

export interface OkResponse<T> {
  v: typeof PROTOCOL_VERSION;
  id: string;
  ok: true;
  result: T;
}

export interface ErrorResponse {
  v: typeof PROTOCOL_VERSION;
  /** Echoed when the request had a well-formed id, otherwise null. */
  id: string | null;
  ok: false;
  error: { code: ErrorCode; message: string };
}

export type KeyServiceResponse<T = unknown> = OkResponse<T> | ErrorResponse;

/** Lengths of a TLS 1.3 transcript hash: SHA-256 or SHA-384, the hashes of the TLS 1.3 suites. */
export const TLS13_TRANSCRIPT_HASH_LENGTHS: readonly number[] = [32, 48];

/**
 * The exact content a TLS 1.3 server signs in CertificateVerify (RFC 8446 §4.4.3):
 * 64 spaces, the context string, a zero byte, then the transcript hash.
 */
export function tls13CertificateVerifyContent(transcriptHash: Buffer): Buffer {
  return Buffer.concat([
    Buffer.alloc(64, 0x20),
    Buffer.from('TLS 1.3, server CertificateVerify', 'latin1'),
    Buffer.from([0]),
    transcriptHash,
  ]);
}

// ---------------------------------------------------------------------------------------------
// Validation limits and key-type rules, shared by the key service (which enforces them) and the
// edge client (which checks them before spending an invocation).
// ---------------------------------------------------------------------------------------------

/** Request ids: 1..64 chars of [A-Za-z0-9._:-]. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** Key names (configured on the service, never a raw ARN): 1..64 chars of [A-Za-z0-9._:-]. */
export const KEY_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Schemes a TLS 1.3 server may use in CertificateVerify. RFC 8446 §4.4.3: "RSA signatures MUST use
 * an RSASSA-PSS algorithm, regardless of whether RSASSA-PKCS1-v1_5 algorithms appear in
 * signature_algorithms" — so the rsa_pkcs1_* schemes are refused for this operation (they remain
 * valid for TLS 1.2 ServerKeyExchange).
 */
export const TLS13_CERTIFICATE_VERIFY_SCHEMES: readonly SignatureSchemeName[] = TLS13_SCHEME_NAMES;

/**
 * Schemes a TLS 1.2 server may use in ServerKeyExchange: every scheme the service knows. None of
 * them uses SHA-1 (RFC 9155; KMS cannot sign with SHA-1 either). ECDSA schemes stay bound to their
 * curve as in TLS 1.3, which is also what KMS enforces (an ECC_NIST_P384 key signs only with
 * ECDSA_SHA_384), so a TLS 1.2 engine picks ecdsa_secp384r1_sha384 (0x0503) for a P-384 key.
 */
export const TLS12_SERVER_KEY_EXCHANGE_SCHEMES: readonly SignatureSchemeName[] = SIGNATURE_SCHEMES;

/** Length of ClientHello.random and ServerHello.random (and of the server-random seed). */
export const TLS_RANDOM_LENGTH = 32;

/** Last 8 bytes of ServerHello.random when a TLS 1.3-capable server negotiates TLS 1.2 (RFC 8446 §4.1.3). */
export const DOWNGRADE_SENTINEL_TLS12 = Buffer.from('444f574e47524401', 'hex');

/**
 * The TLS 1.2 ServerHello.random the edge sends and the key service accepts: SHA-256(seed)[0..24] ‖
 * "DOWNGRD\x01". The edge picks a fresh random seed per handshake; `tls12.server_key_exchange` signs
 * only over this value, and `tls12.rsa_master_secret` checks its first 24 bytes.
 */
export function tls12ServerRandom(seed: Buffer): Buffer {
  return Buffer.concat([crypto.createHash('sha256').update(seed).digest().subarray(0, 24), DOWNGRADE_SENTINEL_TLS12]);
}

/**
 * The exact content a TLS 1.2 server signs in ServerKeyExchange (RFC 5246 §7.4.3, RFC 8422 §5.4):
 * client_random ‖ server_random ‖ ServerECDHParams.
 */
export function tls12ServerKeyExchangeContent(clientRandom: Buffer, serverRandom: Buffer, params: Buffer): Buffer {
  return Buffer.concat([clientRandom, serverRandom, params]);
}

/** Largest RSA modulus served (RSA 4096): the longest EncryptedPreMasterSecret, in bytes. */
export const MAX_RSA_CIPHERTEXT_BYTES = 512;

/**
 * Largest `handshakeMessages` (ClientHello..ClientKeyExchange) accepted for the extended master
 * secret: three handshake messages of the engine's 64 KiB maximum plus small ones fit comfortably.
 */
export const MAX_HANDSHAKE_MESSAGES_BYTES = 256 * 1024;

/**
 * ClientHello.client_version values accepted for RSA key exchange: TLS 1.2 (0x0303) and above (a
 * client that can do better still says 0x0303 or more); anything older is never negotiated.
 */
export const MIN_RSA_CLIENT_VERSION = 0x0303;
export const MAX_RSA_CLIENT_VERSION = 0x03ff;

/** Session-ticket keys are 32 bytes (AES-256-GCM). */
export const TICKET_KEY_LENGTH = 32;

/** Epochs whose ticket keys the fleet accepts (current included): 2 (current and previous) up to this. */
export const MAX_TICKET_EPOCHS_ACCEPTED = 8;

/** Minimal structural view of a node:crypto public or private KeyObject (kept type-only here). */
interface AsymmetricKeyLike {
  asymmetricKeyType?: string;
  asymmetricKeyDetails?: { modulusLength?: number; namedCurve?: string };
}

/**
 * The KMS KeySpec name of a node:crypto key (RSA_2048, ECC_NIST_P256, ...), or undefined for key
 * types TLS signing here does not serve (Ed25519, RSA-PSS-restricted keys, secp256k1, ...).
 */
export function keySpecOfKeyObject(key: AsymmetricKeyLike): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && typeof details.modulusLength === 'number') {
    return `RSA_${details.modulusLength}`;
  }
  if (key.asymmetricKeyType === 'ec') {
    switch (details.namedCurve) {
      case 'prime256v1':
      case 'P-256':
        return 'ECC_NIST_P256';
      case 'secp384r1':
      case 'P-384':
        return 'ECC_NIST_P384';
      case 'secp521r1':
      case 'P-521':
        return 'ECC_NIST_P521';
    }
  }
  return undefined;
}
