/**
 * The edge's key-service client over any KeyServiceTarget: implements KeyOperations with a deadline
 * per operation, a cap on operations in flight, requests and responses through the protocol's one
 * codec (contract/key-service-codec.ts: strict, so master secrets are exactly 48 bytes, ticket keys
 * exactly 32, no unexpected fields), and verification of every signature —
 * TLS 1.3 CertificateVerify and TLS 1.2 ServerKeyExchange — against the certificate's public key
 * before it is returned (docs/architecture.md, "Deployables"; docs/key-service-protocol.md).
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import { isObject } from '../../../contract/json';
import {
  KEY_NAME_PATTERN,
  TLS12_SERVER_KEY_EXCHANGE_SCHEMES,
  SIGNATURE_SCHEMES,
  TLS13_CERTIFICATE_VERIFY_SCHEMES,
  tls12ServerRandom,
  type KeyServiceRequest,
  type OperationName,
  type PingResult,
  type SignatureSchemeName,
} from '../../../contract/key-service-protocol';
import {
  decodeResponse,
  encodeRequest,
  KeyServiceMessageError,
  type DecodedRequest,
  type DecodedResults,
} from '../../../contract/key-service-codec';
import {
  KeyOperationError,
  type KeyOperations,
  type MasterSecretResult,
  type RsaMasterSecretInput,
  type SignResult,
  type TicketKeys,
} from '../tls/key-operations';
import type { KeyServiceTarget } from './target';
import {
  schemeMatchesKey,
  toVerificationKey,
  verifyTls12ServerKeyExchange,
  verifyTls13CertificateVerify,
  type CertificateKeyInput,
} from './verify';

export const DEFAULT_TIMEOUT_MS = 1000;
export const DEFAULT_MAX_IN_FLIGHT = 256;
export const DEFAULT_PUBLIC_KEY_TTL_MS = 5 * 60 * 1000;

export interface KeyServiceClientOptions {
  target: KeyServiceTarget;
  /** Deadline of each operation (including a public-key fetch it may need). Default 1000 ms. */
  timeoutMs?: number;
  /** Operations in flight beyond this are rejected at once with `overloaded`. Default 256. */
  maxInFlight?: number;
  /** Certificate keys to verify against, by key name (see registerCertificateKey). */
  certificateKeys?: Iterable<[string, CertificateKeyInput]> | Record<string, CertificateKeyInput>;
  /**
   * When no certificate key is registered for a key name, fetch its public key from the service
   * (`public_key`, once, cached) and verify against that. Default true. With false, signing a key
   * name without a registered certificate key fails with `bad_request` and nothing is invoked.
   */
  fetchUnregisteredKeys?: boolean;
  /** How long a fetched public key is trusted. Default 5 minutes. Registered keys never expire. */
  publicKeyTtlMs?: number;
}

interface CachedPublicKey {
  spki: Buffer;
  keySpec: string;
  key: KeyObject;
  fetchedAt: number;
}

export class KeyServiceClient implements KeyOperations {
  readonly target: KeyServiceTarget;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  private readonly fetchUnregistered: boolean;
  private readonly publicKeyTtlMs: number;
  private readonly certificateKeys = new Map<string, KeyObject>();
  private readonly fetchedKeys = new Map<string, CachedPublicKey>();
  private readonly pendingFetches = new Map<string, Promise<CachedPublicKey>>();
  private active = 0;

  constructor(options: KeyServiceClientOptions) {
    this.target = options.target;
    this.timeoutMs = positiveInt(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.maxInFlight = positiveInt(options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, 'maxInFlight');
    this.fetchUnregistered = options.fetchUnregisteredKeys ?? true;
    this.publicKeyTtlMs = options.publicKeyTtlMs ?? DEFAULT_PUBLIC_KEY_TTL_MS;
    const initial = options.certificateKeys;
    if (initial) {
      const entries = Symbol.iterator in initial ? initial : Object.entries(initial);
      for (const [name, input] of entries as Iterable<[string, CertificateKeyInput]>)
        this.registerCertificateKey(name, input);
    }
  }

  /** Operations currently in flight (for metrics and tests). */
  get inFlight(): number {
    return this.active;
  }

  /**
   * Register the public key of the certificate served for `keyName` (a certificate or SPKI, DER or
   * PEM, or a KeyObject). Signatures for that key name are verified against it. Throws TypeError.
   */
  registerCertificateKey(keyName: string, spkiOrCert: CertificateKeyInput): void {
    if (!KEY_NAME_PATTERN.test(keyName)) throw new TypeError('key name must be 1..64 characters of [A-Za-z0-9._:-]');
    this.certificateKeys.set(keyName, toVerificationKey(spkiOrCert));
  }

  unregisterCertificateKey(keyName: string): void {
    this.certificateKeys.delete(keyName);
  }

  async signTls13CertificateVerify(
    keyName: string,
    scheme: SignatureSchemeName,
    transcriptHash: Buffer,
  ): Promise<SignResult> {
    this.checkSigningRequest(keyName, scheme);
    if (!TLS13_CERTIFICATE_VERIFY_SCHEMES.includes(scheme)) {
      throw new KeyOperationError('unsupported', `${scheme} cannot be used in a TLS 1.3 CertificateVerify`);
    }
    return this.signAndVerify(
      keyName,
      scheme,
      encode({ op: 'tls13.certificate_verify', id: newRequestId(), key: keyName, scheme, transcriptHash }),
      (key, signature) => verifyTls13CertificateVerify(key, scheme, transcriptHash, signature),
    );
  }

  async signTls12ServerKeyExchange(
    keyName: string,
    scheme: SignatureSchemeName,
    clientRandom: Buffer,
    serverRandomSeed: Buffer,
    params: Buffer,
  ): Promise<SignResult> {
    this.checkSigningRequest(keyName, scheme);
    if (!TLS12_SERVER_KEY_EXCHANGE_SCHEMES.includes(scheme)) {
      throw new KeyOperationError('unsupported', `${scheme} cannot be used in a TLS 1.2 ServerKeyExchange`);
    }
    // The codec checks the params (a named curve's point) as the service does: an engine bug costs no invocation.
    const request = encode({
      op: 'tls12.server_key_exchange',
      id: newRequestId(),
      key: keyName,
      scheme,
      clientRandom,
      serverRandomSeed,
      params,
    });
    return this.signAndVerify(
      keyName,
      scheme,
      request,
      // Verified over the server random the ServerHello carries, derived from the seed as the service does.
      (key, signature) =>
        verifyTls12ServerKeyExchange(key, scheme, clientRandom, tls12ServerRandom(serverRandomSeed), params, signature),
    );
  }

  async rsaMasterSecret(keyName: string, input: RsaMasterSecretInput): Promise<MasterSecretResult> {
    if (!KEY_NAME_PATTERN.test(keyName)) throw new KeyOperationError('bad_request', 'invalid key name');
    if (!isObject(input)) throw new KeyOperationError('bad_request', 'rsaMasterSecret input must be an object');
    const request = encode({
      op: 'tls12.rsa_master_secret',
      id: newRequestId(),
      key: keyName,
      encryptedPreMasterSecret: input.encryptedPreMasterSecret,
      clientVersion: input.clientVersion,
      clientRandom: input.clientRandom,
      serverRandom: input.serverRandom,
      serverRandomSeed: input.serverRandomSeed,
      prfHash: input.prfHash,
      ...(input.handshakeMessages !== undefined ? { handshakeMessages: input.handshakeMessages } : {}),
    });
    return this.run(async (signal) => {
      const started = performance.now();
      const { masterSecret } = await this.call(request, signal);
      return { masterSecret, latencyMs: performance.now() - started };
    });
  }

  async ticketKeys(): Promise<TicketKeys> {
    const request = encode({ op: 'ticket_keys', id: newRequestId() });
    return this.run((signal) => this.call(request, signal));
  }

  async publicKey(keyName: string): Promise<{ spki: Buffer; keySpec: string }> {
    if (!KEY_NAME_PATTERN.test(keyName)) throw new KeyOperationError('bad_request', 'invalid key name');
    return this.run(async (signal) => {
      const cached = await raceAbort(this.fetchPublicKey(keyName), signal);
      return { spki: Buffer.from(cached.spki), keySpec: cached.keySpec };
    });
  }

  async ping(): Promise<PingResult> {
    const request = encode({ op: 'ping', id: newRequestId() });
    return this.run(async (signal) => {
      const { service, protocol, version, keys } = await this.call(request, signal);
      // The alias-prefix pattern is the operator's concern (keyless status), not the edge's.
      return { service, protocol, version, keys };
    });
  }

  /** Forget public keys fetched from the service (registered certificate keys are kept). */
  forgetFetchedPublicKeys(): void {
    this.fetchedKeys.clear();
  }

  close(): void {
    this.target.close?.();
  }

  // -------------------------------------------------------------------------------------------

  /** Checks every signing operation shares (key name, scheme, certificate key). */
  private checkSigningRequest(keyName: string, scheme: SignatureSchemeName): void {
    if (!KEY_NAME_PATTERN.test(keyName)) throw new KeyOperationError('bad_request', 'invalid key name');
    if (!(SIGNATURE_SCHEMES as readonly string[]).includes(scheme)) {
      throw new KeyOperationError('unsupported', 'unknown signature scheme');
    }
    const registered = this.certificateKeys.get(keyName);
    if (registered && !schemeMatchesKey(scheme, registered)) {
      throw new KeyOperationError('unsupported', `${scheme} does not match the certificate key of "${keyName}"`);
    }
    if (!registered && !this.fetchUnregistered) {
      throw new KeyOperationError('bad_request', `no certificate key registered for "${keyName}"`);
    }
  }

  /**
   * Run one signing request and verify the returned signature against the certificate key (or, for
   * unregistered names, the service-reported public key, fetched concurrently) before returning it.
   */
  private signAndVerify(
    keyName: string,
    scheme: SignatureSchemeName,
    request: KeyServiceRequest & { op: 'tls13.certificate_verify' | 'tls12.server_key_exchange' },
    verify: (key: KeyObject, signature: Buffer) => boolean,
  ): Promise<SignResult> {
    const registered = this.certificateKeys.get(keyName);
    return this.run(async (signal) => {
      const started = performance.now();
      const keyPromise: Promise<KeyObject> = registered
        ? Promise.resolve(registered)
        : this.fetchPublicKey(keyName).then((c) => c.key);
      keyPromise.catch(() => undefined); // observed below; avoid an unhandled rejection if signing fails first

      const { signature } = await this.call(request, signal);

      const key = await raceAbort(keyPromise, signal);
      if (!verify(key, signature)) {
        throw new KeyOperationError(
          'bad_signature',
          `the key service's ${scheme} signature for "${keyName}" does not verify against the ${registered ? 'certificate' : 'service-reported'} public key`,
        );
      }
      return { signature, latencyMs: performance.now() - started };
    });
  }

  /** Admission (in-flight cap) and the per-operation deadline. */
  private async run<T>(op: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.active >= this.maxInFlight) {
      throw new KeyOperationError(
        'overloaded',
        `${this.active} key operations already in flight (cap ${this.maxInFlight})`,
      );
    }
    this.active++;
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(new KeyOperationError('timeout', `key operation exceeded its ${this.timeoutMs} ms deadline`)),
      this.timeoutMs,
    );
    try {
      return await raceAbort(op(controller.signal), controller.signal);
    } finally {
      clearTimeout(timer);
      this.active--;
    }
  }

  /** The service's public key for a name: cached for the TTL, one fetch shared by concurrent callers. */
  private fetchPublicKey(keyName: string): Promise<CachedPublicKey> {
    const cached = this.fetchedKeys.get(keyName);
    if (cached && performance.now() - cached.fetchedAt < this.publicKeyTtlMs) return Promise.resolve(cached);
    let pending = this.pendingFetches.get(keyName);
    if (!pending) {
      // The fetch is shared, so it runs under its own deadline rather than one caller's signal.
      const controller = new AbortController();
      const timer = setTimeout(
        () => controller.abort(new KeyOperationError('timeout', `public key fetch exceeded ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      pending = raceAbort(this.doFetchPublicKey(keyName, controller.signal), controller.signal).finally(() => {
        clearTimeout(timer);
        this.pendingFetches.delete(keyName);
      });
      this.pendingFetches.set(keyName, pending);
    }
    return pending;
  }

  private async doFetchPublicKey(keyName: string, signal: AbortSignal): Promise<CachedPublicKey> {
    const { spki, keySpec } = await this.call(encode({ op: 'public_key', id: newRequestId(), key: keyName }), signal);
    let key: KeyObject;
    try {
      key = toVerificationKey(spki);
    } catch {
      throw new KeyOperationError('internal', 'malformed key-service response: spki');
    }
    const entry: CachedPublicKey = { spki, keySpec, key, fetchedAt: performance.now() };
    this.fetchedKeys.set(keyName, entry);
    return entry;
  }

  /** One request through the target; its response decoded by the codec, a typed refusal thrown. */
  private async call<O extends OperationName>(
    request: KeyServiceRequest & { op: O },
    signal: AbortSignal,
  ): Promise<DecodedResults[O]> {
    const response = await this.target.invoke(request, signal);
    let decoded;
    try {
      decoded = decodeResponse<O>(request, response);
    } catch (err) {
      throw asOperationError(err);
    }
    if (!decoded.ok) throw new KeyOperationError(decoded.code, `key service: ${decoded.message || decoded.code}`);
    return decoded.result;
  }
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n <= 0) throw new TypeError(`${name} must be a positive integer`);
  return n;
}

function newRequestId(): string {
  return randomUUID();
}

/** A request for the wire; what the service would refuse fails here, before an invocation. */
function encode<R extends DecodedRequest>(request: R): KeyServiceRequest & { op: R['op'] } {
  try {
    return encodeRequest(request) as KeyServiceRequest & { op: R['op'] };
  } catch (err) {
    throw asOperationError(err);
  }
}

function asOperationError(err: unknown): unknown {
  return err instanceof KeyServiceMessageError ? new KeyOperationError(err.code, err.message) : err;
}

/** Resolve/reject with `p`, or reject with the signal's reason (a KeyOperationError) once it aborts. */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function abortReason(signal: AbortSignal): KeyOperationError {
  const r: unknown = signal.reason;
  return r instanceof KeyOperationError ? r : new KeyOperationError('timeout', 'key operation aborted');
}
