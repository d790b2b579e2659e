/**
 * Test double for the key service: signs TLS 1.3 CertificateVerify content with a private key held
 * in the test process. Used by engine unit tests only; the edge itself always talks to the key
 * service (the integration and interop suites prove that path).
 */
import * as crypto from 'node:crypto';
import type { KeyOperations, SignResult } from '../../edge-proxy/src/keyless/key-operations';
import { KeyOperationError } from '../../edge-proxy/src/keyless/key-operations';
import { SCHEME_HASH, SignatureSchemeName, tls13CertificateVerifyContent, PingResult } from '../../lambdas/key-service/protocol';

export class InProcessKeys implements KeyOperations {
  signatures = 0;
  /** Optional delay or failure injection. */
  delayMs = 0;
  failWith?: KeyOperationError;

  constructor(private readonly keys: Map<string, crypto.KeyObject>) {}

  async signTls13CertificateVerify(keyName: string, scheme: SignatureSchemeName, transcriptHash: Buffer): Promise<SignResult> {
    const started = Date.now();
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failWith) throw this.failWith;
    const key = this.keys.get(keyName);
    if (!key) throw new KeyOperationError('unknown_key', `no key ${keyName}`);
    const content = tls13CertificateVerifyContent(transcriptHash);
    const hash = SCHEME_HASH[scheme].hash;
    const signature = scheme.startsWith('rsa_pss')
      ? crypto.sign(hash, content, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST })
      : crypto.sign(hash, content, { key, dsaEncoding: 'der' });
    this.signatures++;
    return { signature, latencyMs: Date.now() - started };
  }

  async publicKey(keyName: string): Promise<{ spki: Buffer; keySpec: string }> {
    const key = this.keys.get(keyName);
    if (!key) throw new KeyOperationError('unknown_key', `no key ${keyName}`);
    return { spki: crypto.createPublicKey(key).export({ format: 'der', type: 'spki' }), keySpec: key.asymmetricKeyType === 'rsa' ? 'RSA_2048' : 'ECC_NIST_P256' };
  }

  async ping(): Promise<PingResult> {
    return { service: 'keyless-key-service', protocol: 1, version: 'test', keys: [] };
  }
}
