/**
 * Test double for the key service: the private keys live in the test process and every operation is
 * done with node:crypto — through the key service's OWN code where it matters: the same signing
 * options, the same ServerECDHParams validation, and the same RSA premaster decryption with implicit
 * rejection and master-secret derivation (lambdas/key-service/rsa-premaster). Ticket keys are, for
 * tests only, HMAC-SHA256 of the epoch under a test secret, so two test servers share them without a
 * store (the real service makes random keys and stores them: lambdas/key-service/ticket-keys.ts).
 *
 * Used by engine unit tests only; the edge itself always talks to the key service (the integration
 * and interop suites prove that path).
 */
import * as crypto from 'node:crypto';
import type {
  KeyOperations,
  MasterSecretResult,
  RsaMasterSecretInput,
  SignResult,
  TicketKeys,
} from '../../edge-proxy/src/tls/key-operations';
import { KeyOperationError } from '../../edge-proxy/src/tls/key-operations';
import { signOptions } from '../../lambdas/key-service/backends/local-key';
import { checkServerEcdhParams } from '../../contract/ecdh-params';
import { KeyServiceError } from '../../contract/key-service-errors';
import {
  SCHEME_HASH,
  TLS13_CERTIFICATE_VERIFY_SCHEMES,
  keySpecOfKeyObject,
  schemeMatchesKeySpec,
  tls12ServerKeyExchangeContent,
  tls12ServerRandom,
  PROTOCOL_VERSION,
  tls13CertificateVerifyContent,
  type PingResult,
  type SignatureSchemeName,
} from '../../contract/key-service-protocol';
import {
  prepareRsaDecryptionKey,
  rsaMasterSecret,
  type RsaDecryptionKey,
} from '../../lambdas/key-service/rsa-premaster';
import { DEFAULT_TICKET_EPOCH_SECONDS, epochOf } from '../../lambdas/key-service/ticket-keys';

/** The default ticket secret: shared by every InProcessKeys, so two test servers resume each other's tickets. */
export const TEST_TICKET_SECRET = Buffer.from('keyless in-process test ticket secret (not for production)');

export interface InProcessKeysOptions {
  /** HMAC key the ticket keys are derived from. Default TEST_TICKET_SECRET. */
  ticketSecret?: Buffer;
  epochSeconds?: number;
  /** Clock (ms since the epoch) for ticket epochs. */
  now?: () => number;
}

export class InProcessKeys implements KeyOperations {
  /** Signatures made (CertificateVerify and ServerKeyExchange). */
  signatures = 0;
  /** Master secrets derived (RSA key exchange). */
  masterSecrets = 0;
  ticketKeyFetches = 0;
  /** Optional delay or failure injection (applies to every operation). */
  delayMs = 0;
  failWith?: KeyOperationError;

  private readonly decryptionKeys = new Map<string, RsaDecryptionKey>();
  private readonly ticketSecret: Buffer;
  private readonly epochSeconds: number;
  private readonly now: () => number;

  constructor(
    private readonly keys: Map<string, crypto.KeyObject>,
    options: InProcessKeysOptions = {},
  ) {
    this.ticketSecret = options.ticketSecret ?? TEST_TICKET_SECRET;
    this.epochSeconds = options.epochSeconds ?? DEFAULT_TICKET_EPOCH_SECONDS;
    this.now = options.now ?? Date.now;
  }

  async signTls13CertificateVerify(
    keyName: string,
    scheme: SignatureSchemeName,
    transcriptHash: Buffer,
  ): Promise<SignResult> {
    const started = Date.now();
    await this.injected();
    if (!TLS13_CERTIFICATE_VERIFY_SCHEMES.includes(scheme))
      throw new KeyOperationError('unsupported', `${scheme} not allowed in TLS 1.3`);
    const signature = this.sign(keyName, scheme, tls13CertificateVerifyContent(transcriptHash));
    return { signature, latencyMs: Date.now() - started };
  }

  async signTls12ServerKeyExchange(
    keyName: string,
    scheme: SignatureSchemeName,
    clientRandom: Buffer,
    serverRandomSeed: Buffer,
    params: Buffer,
  ): Promise<SignResult> {
    const started = Date.now();
    await this.injected();
    if (clientRandom.length !== 32 || serverRandomSeed.length !== 32)
      throw new KeyOperationError('bad_request', 'clientRandom and serverRandomSeed must be 32 bytes');
    const check = checkServerEcdhParams(params);
    if (!check.ok) throw new KeyOperationError(check.code, check.message);
    // As the key service does: the server random is derived from the seed, never taken from the caller.
    const signature = this.sign(
      keyName,
      scheme,
      tls12ServerKeyExchangeContent(clientRandom, tls12ServerRandom(serverRandomSeed), params),
    );
    return { signature, latencyMs: Date.now() - started };
  }

  async rsaMasterSecret(keyName: string, input: RsaMasterSecretInput): Promise<MasterSecretResult> {
    const started = Date.now();
    await this.injected();
    const key = this.key(keyName);
    if (key.asymmetricKeyType !== 'rsa')
      throw new KeyOperationError('unsupported', 'RSA key exchange needs an RSA key');
    let prepared = this.decryptionKeys.get(keyName);
    if (!prepared) {
      prepared = prepareRsaDecryptionKey(key);
      this.decryptionKeys.set(keyName, prepared);
    }
    let masterSecret: Buffer;
    try {
      masterSecret = rsaMasterSecret(prepared, input); // the service's code path, implicit rejection included
    } catch (err) {
      if (err instanceof KeyServiceError) throw new KeyOperationError(err.code, err.message);
      throw err;
    }
    this.masterSecrets++;
    return { masterSecret, latencyMs: Date.now() - started };
  }

  async ticketKeys(): Promise<TicketKeys> {
    await this.injected();
    const epoch = epochOf(this.now(), this.epochSeconds);
    const derive = (e: number) =>
      crypto.createHmac('sha256', this.ticketSecret).update(`test ticket key ${e}`).digest();
    this.ticketKeyFetches++;
    return {
      epochSeconds: this.epochSeconds,
      current: { epoch, key: derive(epoch) },
      previous: { epoch: epoch - 1, key: derive(epoch - 1) },
    };
  }

  async publicKey(keyName: string): Promise<{ spki: Buffer; keySpec: string }> {
    const key = this.key(keyName);
    const keySpec = keySpecOfKeyObject(key);
    if (!keySpec) throw new KeyOperationError('unsupported', 'unsupported key type');
    return { spki: crypto.createPublicKey(key).export({ format: 'der', type: 'spki' }), keySpec };
  }

  async ping(): Promise<PingResult> {
    return { service: 'keyless-key-service', protocol: PROTOCOL_VERSION, version: 'test', keys: [] };
  }

  private async injected(): Promise<void> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failWith) throw this.failWith;
  }

  private key(keyName: string): crypto.KeyObject {
    const key = this.keys.get(keyName);
    if (!key) throw new KeyOperationError('unknown_key', `no key ${keyName}`);
    return key;
  }

  private sign(keyName: string, scheme: SignatureSchemeName, content: Buffer): Buffer {
    const key = this.key(keyName);
    const spec = keySpecOfKeyObject(key);
    if (!spec || !schemeMatchesKeySpec(scheme, spec))
      throw new KeyOperationError('unsupported', `${scheme} does not match the key`);
    const signature = crypto.sign(SCHEME_HASH[scheme].hash, content, signOptions(key, scheme));
    this.signatures++;
    return signature;
  }
}

/** `keys`, counting its TLS 1.3 CertificateVerify signatures: what a test of admission expects to stay untouched. */
export interface SignCountingKeys {
  readonly keys: KeyOperations;
  /** CertificateVerify signatures asked of `keys` so far. */
  readonly signed: number;
}

export function countTls13Signatures(keys: KeyOperations): SignCountingKeys {
  let signed = 0;
  const counting: KeyOperations = Object.assign(Object.create(keys) as KeyOperations, {
    signTls13CertificateVerify: (...a: Parameters<KeyOperations['signTls13CertificateVerify']>) => {
      signed++;
      return keys.signTls13CertificateVerify(...a);
    },
  });
  return {
    keys: counting,
    get signed() {
      return signed;
    },
  };
}
