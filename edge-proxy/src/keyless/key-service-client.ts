/**
 * The edge's key-service client over any KeyServiceTarget: implements KeyOperations with a deadline
 * per operation, a cap on operations in flight, strict response validation (master secrets exactly
 * 48 bytes, ticket keys exactly 32, no unexpected fields), and verification of every signature —
 * TLS 1.3 CertificateVerify and TLS 1.2 ServerKeyExchange — against the certificate's public key
 * before it is returned (docs/architecture.md, "Deployables"; docs/key-service-protocol.md).
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import { checkServerEcdhParams } from '../../../lambdas/key-service/ecdh-params';
import {
  ERROR_CODES,
  KEY_NAME_PATTERN,
  MAX_HANDSHAKE_MESSAGES_BYTES,
  MAX_RSA_CIPHERTEXT_BYTES,
  MAX_RSA_CLIENT_VERSION,
  MIN_RSA_CLIENT_VERSION,
  PROTOCOL_VERSION,
  TICKET_KEY_LENGTH,
  MAX_TICKET_EPOCHS_ACCEPTED,
  TLS_RANDOM_LENGTH,
  TLS12_SERVER_KEY_EXCHANGE_SCHEMES,
  TLS13_TRANSCRIPT_HASH_LENGTHS,
  SIGNATURE_SCHEMES,
  TLS13_CERTIFICATE_VERIFY_SCHEMES,
  tls12ServerRandom,
  type ErrorCode,
  type KeyDescription,
  type KeyServiceRequest,
  type PingResult,
  type SignatureSchemeName,
} from '../../../lambdas/key-service/protocol';
import { MASTER_SECRET_LENGTH, PRF12_HASHES } from '../../../lambdas/key-service/tls12-prf';
import { decodeBase64Strict } from '../../../lambdas/key-service/validate';
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
/** Largest signature any supported key produces (RSA-4096: 512 bytes; DER ECDSA P-521: ≤ 139). */
const MAX_SIGNATURE_BYTES = 512;

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
      for (const [name, input] of entries as Iterable<[string, CertificateKeyInput]>) this.registerCertificateKey(name, input);
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

  async signTls13CertificateVerify(keyName: string, scheme: SignatureSchemeName, transcriptHash: Buffer): Promise<SignResult> {
    this.checkSigningRequest(keyName, scheme);
    if (!TLS13_CERTIFICATE_VERIFY_SCHEMES.includes(scheme)) {
      throw new KeyOperationError('unsupported', `${scheme} cannot be used in a TLS 1.3 CertificateVerify`);
    }
    if (!Buffer.isBuffer(transcriptHash) || !TLS13_TRANSCRIPT_HASH_LENGTHS.includes(transcriptHash.length)) {
      throw new KeyOperationError('bad_request', 'transcript hash must be 32 (SHA-256) or 48 (SHA-384) bytes');
    }
    return this.signAndVerify(
      keyName,
      scheme,
      {
        v: PROTOCOL_VERSION,
        id: newRequestId(),
        op: 'tls13.certificate_verify',
        key: keyName,
        scheme,
        transcriptHash: transcriptHash.toString('base64'),
      },
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
    requireBytes(clientRandom, TLS_RANDOM_LENGTH, 'clientRandom');
    requireBytes(serverRandomSeed, TLS_RANDOM_LENGTH, 'serverRandomSeed');
    if (!Buffer.isBuffer(params)) throw new KeyOperationError('bad_request', 'params must be a Buffer');
    // The service checks the same rules; checking here saves an invocation on an engine bug.
    const check = checkServerEcdhParams(params);
    if (!check.ok) throw new KeyOperationError(check.code, check.message);
    return this.signAndVerify(
      keyName,
      scheme,
      {
        v: PROTOCOL_VERSION,
        id: newRequestId(),
        op: 'tls12.server_key_exchange',
        key: keyName,
        scheme,
        clientRandom: clientRandom.toString('base64'),
        serverRandomSeed: serverRandomSeed.toString('base64'),
        params: params.toString('base64'),
      },
      // Verified over the server random the ServerHello carries, derived from the seed as the service does.
      (key, signature) => verifyTls12ServerKeyExchange(key, scheme, clientRandom, tls12ServerRandom(serverRandomSeed), params, signature),
    );
  }

  async rsaMasterSecret(keyName: string, input: RsaMasterSecretInput): Promise<MasterSecretResult> {
    if (!KEY_NAME_PATTERN.test(keyName)) throw new KeyOperationError('bad_request', 'invalid key name');
    if (!isObject(input)) throw new KeyOperationError('bad_request', 'rsaMasterSecret input must be an object');
    const ct = input.encryptedPreMasterSecret;
    if (!Buffer.isBuffer(ct) || ct.length === 0 || ct.length > MAX_RSA_CIPHERTEXT_BYTES) {
      throw new KeyOperationError('bad_request', `encryptedPreMasterSecret must be 1..${MAX_RSA_CIPHERTEXT_BYTES} bytes`);
    }
    const v = input.clientVersion;
    if (!Number.isInteger(v) || v < MIN_RSA_CLIENT_VERSION || v > MAX_RSA_CLIENT_VERSION) {
      throw new KeyOperationError('bad_request', 'clientVersion must be 0x0303..0x03ff');
    }
    requireBytes(input.clientRandom, TLS_RANDOM_LENGTH, 'clientRandom');
    requireBytes(input.serverRandom, TLS_RANDOM_LENGTH, 'serverRandom');
    requireBytes(input.serverRandomSeed, TLS_RANDOM_LENGTH, 'serverRandomSeed');
    if (!(PRF12_HASHES as readonly string[]).includes(input.prfHash)) {
      throw new KeyOperationError('bad_request', 'prfHash must be sha256 or sha384');
    }
    const hm = input.handshakeMessages;
    if (hm !== undefined && (!Buffer.isBuffer(hm) || hm.length === 0 || hm.length > MAX_HANDSHAKE_MESSAGES_BYTES)) {
      throw new KeyOperationError('bad_request', `handshakeMessages must be 1..${MAX_HANDSHAKE_MESSAGES_BYTES} bytes`);
    }
    const request: KeyServiceRequest = {
      v: PROTOCOL_VERSION,
      id: newRequestId(),
      op: 'tls12.rsa_master_secret',
      key: keyName,
      encryptedPreMasterSecret: ct.toString('base64'),
      clientVersion: v,
      clientRandom: input.clientRandom.toString('base64'),
      serverRandom: input.serverRandom.toString('base64'),
      serverRandomSeed: input.serverRandomSeed.toString('base64'),
      prfHash: input.prfHash,
      ...(hm !== undefined ? { handshakeMessages: hm.toString('base64') } : {}),
    };
    return this.run(async (signal) => {
      const started = performance.now();
      const result = await this.call(request, signal);
      expectFields(result, ['masterSecret', 'backendMs']);
      const masterSecret = decodeStrict(field(result, 'masterSecret'), 'masterSecret');
      if (masterSecret.length !== MASTER_SECRET_LENGTH) {
        throw new KeyOperationError('internal', `malformed key-service response: masterSecret must be ${MASTER_SECRET_LENGTH} bytes`);
      }
      checkBackendMs(result.backendMs);
      return { masterSecret, latencyMs: performance.now() - started };
    });
  }

  async ticketKeys(): Promise<TicketKeys> {
    return this.run(async (signal) => {
      const result = await this.call({ v: PROTOCOL_VERSION, id: newRequestId(), op: 'ticket_keys' }, signal);
      // epochsAccepted and older come only when more than two epochs are accepted.
      const extended = 'epochsAccepted' in result;
      expectFields(result, extended ? ['epochSeconds', 'current', 'previous', 'epochsAccepted', 'older'] : ['epochSeconds', 'current', 'previous']);
      const epochSeconds = result.epochSeconds;
      if (typeof epochSeconds !== 'number' || !Number.isSafeInteger(epochSeconds) || epochSeconds <= 0) {
        throw new KeyOperationError('internal', 'malformed key-service response: epochSeconds');
      }
      const current = ticketKey(result.current, 'current');
      const previous = ticketKey(result.previous, 'previous');
      if (previous.epoch !== current.epoch - 1) {
        throw new KeyOperationError('internal', 'malformed key-service response: previous epoch must be current - 1');
      }
      if (!extended) {
        if (previous.key.equals(current.key)) throw new KeyOperationError('internal', 'malformed key-service response: current and previous ticket keys are equal');
        return { epochSeconds, current, previous };
      }
      const epochsAccepted = result.epochsAccepted;
      if (typeof epochsAccepted !== 'number' || !Number.isSafeInteger(epochsAccepted) || epochsAccepted < 3 || epochsAccepted > MAX_TICKET_EPOCHS_ACCEPTED) {
        throw new KeyOperationError('internal', 'malformed key-service response: epochsAccepted');
      }
      if (!Array.isArray(result.older) || result.older.length !== epochsAccepted - 2) {
        throw new KeyOperationError('internal', 'malformed key-service response: older must hold epochsAccepted - 2 keys');
      }
      const older = result.older.map((k: unknown, i: number) => ticketKey(k, `older[${i}]`));
      const all = [current, previous, ...older];
      all.forEach((k, i) => {
        if (k.epoch !== current.epoch - i) throw new KeyOperationError('internal', 'malformed key-service response: ticket-key epochs must count down from current');
        if (all.some((o, j) => j !== i && o.key.equals(k.key))) throw new KeyOperationError('internal', 'malformed key-service response: ticket keys of two epochs are equal');
      });
      return { epochSeconds, current, previous, epochsAccepted, older };
    });
  }

  async publicKey(keyName: string): Promise<{ spki: Buffer; keySpec: string }> {
    if (!KEY_NAME_PATTERN.test(keyName)) throw new KeyOperationError('bad_request', 'invalid key name');
    return this.run(async (signal) => {
      const cached = await raceAbort(this.fetchPublicKey(keyName), signal);
      return { spki: Buffer.from(cached.spki), keySpec: cached.keySpec };
    });
  }

  async ping(): Promise<PingResult> {
    return this.run(async (signal) => {
      const result = await this.call({ v: PROTOCOL_VERSION, id: newRequestId(), op: 'ping' }, signal);
      if (result.service !== 'keyless-key-service' || result.protocol !== PROTOCOL_VERSION || typeof result.version !== 'string') {
        throw new KeyOperationError('internal', 'malformed key-service response: ping');
      }
      if (!Array.isArray(result.keys)) throw new KeyOperationError('internal', 'malformed key-service response: keys');
      const keys: KeyDescription[] = result.keys.map((k: unknown) => {
        if (!isObject(k) || typeof k.name !== 'string' || typeof k.keySpec !== 'string' || !['kms', 'sealed', 'file'].includes(k.custody as string)) {
          throw new KeyOperationError('internal', 'malformed key-service response: keys');
        }
        return { name: k.name, custody: k.custody as KeyDescription['custody'], keySpec: k.keySpec };
      });
      return { service: 'keyless-key-service', protocol: PROTOCOL_VERSION, version: result.version, keys };
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
    request: KeyServiceRequest,
    verify: (key: KeyObject, signature: Buffer) => boolean,
  ): Promise<SignResult> {
    const registered = this.certificateKeys.get(keyName);
    return this.run(async (signal) => {
      const started = performance.now();
      const keyPromise: Promise<KeyObject> = registered
        ? Promise.resolve(registered)
        : this.fetchPublicKey(keyName).then((c) => c.key);
      keyPromise.catch(() => undefined); // observed below; avoid an unhandled rejection if signing fails first

      const result = await this.call(request, signal);
      const signature = decodeB64(field(result, 'signature'), 'signature');
      if (signature.length === 0 || signature.length > MAX_SIGNATURE_BYTES) {
        throw new KeyOperationError('internal', 'malformed key-service response: signature length');
      }
      checkBackendMs(result.backendMs);

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
      throw new KeyOperationError('overloaded', `${this.active} key operations already in flight (cap ${this.maxInFlight})`);
    }
    this.active++;
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new KeyOperationError('timeout', `key operation exceeded its ${this.timeoutMs} ms deadline`)),
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
    const result = await this.call({ v: PROTOCOL_VERSION, id: newRequestId(), op: 'public_key', key: keyName }, signal);
    const spki = decodeB64(field(result, 'spki'), 'spki');
    const keySpec = field(result, 'keySpec');
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

  /** One request through the target; validates the envelope and returns `result`. */
  private async call(request: KeyServiceRequest, signal: AbortSignal): Promise<Record<string, unknown>> {
    const response = await this.target.invoke(request, signal);
    if (!isObject(response) || typeof response.ok !== 'boolean') throw new KeyOperationError('internal', 'malformed key-service response');
    if (response.v !== PROTOCOL_VERSION) {
      // A key service of another release: it refuses our requests (or we its answers) as a whole.
      const theirs = typeof response.v === 'number' && Number.isInteger(response.v) ? `v${response.v}` : 'an unknown version';
      throw new KeyOperationError('unsupported', `key service speaks protocol ${theirs}, this edge v${PROTOCOL_VERSION}: deploy the edge and the key service of the same release`);
    }
    if (response.ok === false) {
      const error = response.error;
      if (!isObject(error) || typeof error.code !== 'string' || !(ERROR_CODES as readonly string[]).includes(error.code)) {
        throw new KeyOperationError('internal', 'malformed key-service error response');
      }
      const message = typeof error.message === 'string' ? sanitize(error.message) : '';
      throw new KeyOperationError(error.code as ErrorCode, `key service: ${message || error.code}`);
    }
    if (response.id !== request.id) throw new KeyOperationError('internal', 'key-service response id does not match the request');
    if (!isObject(response.result)) throw new KeyOperationError('internal', 'malformed key-service response: result');
    return response.result;
  }
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n <= 0) throw new TypeError(`${name} must be a positive integer`);
  return n;
}

function newRequestId(): string {
  return randomUUID();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(result: Record<string, unknown>, name: string): string {
  const v = result[name];
  if (typeof v !== 'string') throw new KeyOperationError('internal', `malformed key-service response: ${name}`);
  return v;
}

function decodeB64(s: string, name: string): Buffer {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    throw new KeyOperationError('internal', `malformed key-service response: ${name} is not base64`);
  }
  return Buffer.from(s, 'base64');
}

/** Strict standard base64 (canonical, padded), as the service emits it. */
function decodeStrict(s: string, name: string): Buffer {
  const buf = decodeBase64Strict(s);
  if (buf === undefined) throw new KeyOperationError('internal', `malformed key-service response: ${name} is not canonical base64`);
  return buf;
}

function checkBackendMs(backendMs: unknown): void {
  if (typeof backendMs !== 'number' || !Number.isFinite(backendMs) || backendMs < 0) {
    throw new KeyOperationError('internal', 'malformed key-service response: backendMs');
  }
}

/** A result must carry exactly these fields (the service never adds secrets we would not expect). */
function expectFields(result: Record<string, unknown>, names: readonly string[]): void {
  const keys = Object.keys(result);
  if (keys.length !== names.length || !keys.every((k) => names.includes(k))) {
    throw new KeyOperationError('internal', `malformed key-service response: expected fields ${names.join(', ')}`);
  }
}

function requireBytes(b: unknown, length: number, name: string): void {
  if (!Buffer.isBuffer(b) || b.length !== length) throw new KeyOperationError('bad_request', `${name} must be ${length} bytes`);
}

function ticketKey(v: unknown, name: string): { epoch: number; key: Buffer } {
  if (!isObject(v)) throw new KeyOperationError('internal', `malformed key-service response: ${name}`);
  expectFields(v, ['epoch', 'key']);
  const epoch = v.epoch;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) {
    throw new KeyOperationError('internal', `malformed key-service response: ${name}.epoch`);
  }
  if (typeof v.key !== 'string') throw new KeyOperationError('internal', `malformed key-service response: ${name}.key`);
  const key = decodeStrict(v.key, `${name}.key`);
  if (key.length !== TICKET_KEY_LENGTH) {
    throw new KeyOperationError('internal', `malformed key-service response: ${name}.key must be ${TICKET_KEY_LENGTH} bytes`);
  }
  return { epoch, key };
}

/** Keep a service-provided message printable and short before it reaches logs and alerts. */
function sanitize(message: string): string {
  return message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
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
