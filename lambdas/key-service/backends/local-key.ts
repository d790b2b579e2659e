/**
 * Operations on a private key held in this process's memory, shared by the `file` and `sealed`
 * backends (and the in-process test double): TLS signatures with node:crypto and TLS 1.2 RSA
 * premaster decryption with implicit rejection (../rsa-premaster).
 */
import * as crypto from 'node:crypto';
import { KeyServiceError } from '../../../contract/key-service-errors';
import { SCHEME_HASH, type SignatureSchemeName } from '../../../contract/key-service-protocol';
import {
  deriveRsaMasterSecret,
  prepareRsaDecryptionKey,
  type RsaDecryptionKey,
  type RsaMasterSecretParams,
} from '../rsa-premaster';
import type { MasterSecretOutput, SignOutput } from './backend';

/** The node:crypto signing options of a TLS signature scheme. */
export function signOptions(privateKey: crypto.KeyObject, scheme: SignatureSchemeName): crypto.SignKeyObjectInput {
  if (scheme.startsWith('rsa_pss_rsae_')) {
    // RFC 8446 §4.2.3 (and TLS 1.2 with RFC 8446's rsa_pss_rsae_*): salt length = digest length.
    return { key: privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: SCHEME_HASH[scheme].length };
  }
  if (scheme.startsWith('rsa_pkcs1_')) return { key: privateKey, padding: crypto.constants.RSA_PKCS1_PADDING };
  return { key: privateKey, dsaEncoding: 'der' };
}

/** Sign in libuv's thread pool (keeps the event loop free). Rejects with KeyServiceError('internal'). */
export function signWithKeyObject(
  privateKey: crypto.KeyObject,
  message: Buffer,
  scheme: SignatureSchemeName,
  what: string,
): Promise<SignOutput> {
  const started = process.hrtime.bigint();
  return new Promise<SignOutput>((resolve, reject) => {
    crypto.sign(SCHEME_HASH[scheme].hash, message, signOptions(privateKey, scheme), (err, signature) => {
      if (err) {
        reject(new KeyServiceError('internal', `${what} signing failed`, err.name));
        return;
      }
      resolve({ signature, backendMs: Number(process.hrtime.bigint() - started) / 1e6 });
    });
  });
}

/** Lazily prepared RSA decryption state for one in-memory key (undefined for EC keys). */
export class LocalRsaDecryptor {
  private prepared: RsaDecryptionKey | undefined;

  constructor(private readonly privateKey: crypto.KeyObject) {}

  /** The master secret for a checked request (see rsa-premaster.ts). Unsupported for EC keys. */
  masterSecret(params: RsaMasterSecretParams): MasterSecretOutput {
    if (this.privateKey.asymmetricKeyType !== 'rsa') {
      throw new KeyServiceError('unsupported', 'RSA key exchange needs an RSA key');
    }
    this.prepared ??= prepareRsaDecryptionKey(this.privateKey);
    const started = process.hrtime.bigint();
    const masterSecret = deriveRsaMasterSecret(this.prepared, params);
    return { masterSecret, backendMs: Number(process.hrtime.bigint() - started) / 1e6 };
  }
}
