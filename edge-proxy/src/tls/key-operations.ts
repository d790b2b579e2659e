/**
 * The TLS engine's port to whoever holds the private keys (docs/architecture.md, "Deployables"):
 * the engine calls it for the one private-key operation of a full handshake, `keyless/` implements
 * it. The edge never sees a private key; every method is asynchronous and may fail with a
 * KeyOperationError, which the engine answers with the alert `KEY_OPERATION_ALERTS` gives its code.
 */
import { AlertDescription } from './alerts';
import type {
  KeyDescription,
  PingResult,
  SignatureSchemeName,
  ErrorCode,
} from '../../../contract/key-service-protocol';

export interface SignResult {
  signature: Buffer;
  /** Wall-clock milliseconds of the whole key operation as seen by the edge. */
  latencyMs: number;
}

export interface RsaMasterSecretInput {
  encryptedPreMasterSecret: Buffer;
  clientVersion: number;
  clientRandom: Buffer;
  serverRandom: Buffer;
  serverRandomSeed: Buffer;
  prfHash: 'sha256' | 'sha384';
  /** ClientHello..ClientKeyExchange as sent, when extended master secret was negotiated. */
  handshakeMessages?: Buffer;
}

export interface MasterSecretResult {
  masterSecret: Buffer;
  latencyMs: number;
}

export interface TicketKeys {
  epochSeconds: number;
  current: { epoch: number; key: Buffer };
  previous: { epoch: number; key: Buffer };
  /** How many epochs the fleet accepts (current included); absent: 2. */
  epochsAccepted?: number;
  /** Keys of epochs current-2 .. current-(epochsAccepted-1), newest first. */
  older?: Array<{ epoch: number; key: Buffer }>;
}

export interface KeyOperations {
  /** Sign the TLS 1.3 server CertificateVerify content for this transcript hash (RFC 8446 §4.4.3). */
  signTls13CertificateVerify(keyName: string, scheme: SignatureSchemeName, transcriptHash: Buffer): Promise<SignResult>;
  /**
   * Sign a TLS 1.2 ServerKeyExchange: the service signs clientRandom ‖ tls12ServerRandom(serverRandomSeed)
   * ‖ params, so the ServerHello must carry `tls12ServerRandom(serverRandomSeed)`.
   */
  signTls12ServerKeyExchange(
    keyName: string,
    scheme: SignatureSchemeName,
    clientRandom: Buffer,
    serverRandomSeed: Buffer,
    params: Buffer,
  ): Promise<SignResult>;
  /** TLS 1.2 RSA key exchange: the master secret for this session (never the premaster). */
  rsaMasterSecret(keyName: string, input: RsaMasterSecretInput): Promise<MasterSecretResult>;
  /** Fleet-wide ticket keys (every accepted epoch). */
  ticketKeys(): Promise<TicketKeys>;
  /** DER SubjectPublicKeyInfo of a key name. */
  publicKey(keyName: string): Promise<{ spki: Buffer; keySpec: string }>;
  ping(): Promise<PingResult>;
}

/**
 * Why a key operation failed: the key service's typed error (`ErrorCode`), or one raised on the edge
 * — `timeout` (deadline), `overloaded` (the client's in-flight cap), `refused` (admission control
 * turned the full handshake away), `bad_signature` (the answer did not verify), `function_error`.
 */
export type KeyOperationErrorCode =
  ErrorCode | 'timeout' | 'overloaded' | 'refused' | 'bad_signature' | 'function_error';

/** A failed key operation. */
export class KeyOperationError extends Error {
  constructor(
    readonly code: KeyOperationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeyOperationError';
  }
}

/**
 * The alert a failed key operation ends the handshake with (RFC 8446 §6.2). A refusal is
 * `handshake_failure`: the server declines the handshake, nothing is broken. Every other failure is
 * ours, not the peer's: `internal_error`.
 */
export const KEY_OPERATION_ALERTS: Readonly<Record<KeyOperationErrorCode, AlertDescription>> = {
  refused: AlertDescription.handshake_failure,
  overloaded: AlertDescription.internal_error,
  timeout: AlertDescription.internal_error,
  unavailable: AlertDescription.internal_error,
  throttled: AlertDescription.internal_error,
  unknown_key: AlertDescription.internal_error,
  unsupported: AlertDescription.internal_error,
  bad_request: AlertDescription.internal_error,
  bad_signature: AlertDescription.internal_error,
  function_error: AlertDescription.internal_error,
  internal: AlertDescription.internal_error,
};

/** Key operations that can be narrowed to one connection, so a per-client limit knows whose handshake it is. */
export interface ConnectionScopedKeyOperations extends KeyOperations {
  forConnection(remoteAddress: string | undefined): KeyOperations;
}

export function isConnectionScoped(ops: KeyOperations): ops is ConnectionScopedKeyOperations {
  return typeof (ops as Partial<ConnectionScopedKeyOperations>).forConnection === 'function';
}

export type { KeyDescription };
