/**
 * What the TLS engine needs from whoever holds the private keys (docs/architecture.md, "Deployables"). The edge never sees a
 * private key; every method is asynchronous and may fail with a KeyOperationError, which the TLS
 * engine turns into a handshake alert.
 */
import type { KeyDescription, PingResult, SignatureSchemeName, ErrorCode } from '../../../contract/key-service-protocol';

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
  signTls12ServerKeyExchange(keyName: string, scheme: SignatureSchemeName, clientRandom: Buffer, serverRandomSeed: Buffer, params: Buffer): Promise<SignResult>;
  /** TLS 1.2 RSA key exchange: the master secret for this session (never the premaster). */
  rsaMasterSecret(keyName: string, input: RsaMasterSecretInput): Promise<MasterSecretResult>;
  /** Fleet-wide ticket keys (every accepted epoch). */
  ticketKeys(): Promise<TicketKeys>;
  /** DER SubjectPublicKeyInfo of a key name. */
  publicKey(keyName: string): Promise<{ spki: Buffer; keySpec: string }>;
  ping(): Promise<PingResult>;
}

/** A failed key operation. `code` is the key service's typed error, or a client-side one. */
export class KeyOperationError extends Error {
  constructor(
    readonly code: ErrorCode | 'timeout' | 'overloaded' | 'bad_signature' | 'function_error',
    message: string,
  ) {
    super(message);
    this.name = 'KeyOperationError';
  }
}

export type { KeyDescription };
