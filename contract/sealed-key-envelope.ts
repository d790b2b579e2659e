/**
 * The sealed-key envelope (docs/architecture.md, "Custody modes", `sealed`): an RSA key pair that KMS
 * generates with GenerateDataKeyPairWithoutPlaintext under a symmetric wrapping key, the private half
 * returned only as ciphertext bound by the encryption context {"keyless:key-name": <name>} that the
 * key policy conditions on (lib/kms-keys.ts). The CLI and the local stack provision it here; only the
 * key service unseals it (lambdas/key-service/backends/sealed.ts).
 */
import * as crypto from 'node:crypto';
import { GenerateDataKeyPairWithoutPlaintextCommand, type DataKeyPairSpec, type KMSClient } from '@aws-sdk/client-kms';
import type { SealedKeyConfig } from './keyless-keys-entry';
import { KeyServiceError } from './key-service-errors';
import { KEY_NAME_PATTERN, keySpecOfKeyObject } from './key-service-protocol';
import { mapKmsError } from './kms-errors';

/** Encryption-context key binding a sealed key's ciphertext to its key name (the CDK key policy conditions on it as SEALED_CONTEXT_KEY). */
export const SEALED_ENCRYPTION_CONTEXT_KEY = 'keyless:key-name';

/** Key pair specs a sealed key may have (the key policy allows exactly these, lib/kms-keys.ts). */
export const SEALED_KEY_SPECS = ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const;
export type SealedKeySpec = (typeof SEALED_KEY_SPECS)[number];

export function sealedEncryptionContext(name: string): Record<string, string> {
  return { [SEALED_ENCRYPTION_CONTEXT_KEY]: name };
}

export interface ProvisionSealedKeyInput {
  /** The key name the service will serve it under (bound into the encryption context). */
  name: string;
  /** The symmetric wrapping key: key id, ARN, alias or alias ARN (kept in the config entry as given). */
  wrappingKeyId: string;
  keySpec: SealedKeySpec;
}

/**
 * Provision a sealed key: KMS generates an RSA key pair and returns the private half only as
 * ciphertext under the wrapping key (GenerateDataKeyPairWithoutPlaintext, encryption context
 * {"keyless:key-name": name}). Returns the KEYLESS_KEYS entry for it. The plaintext private key is
 * never seen by the caller. Throws KeyServiceError (mapped KMS errors) or TypeError for bad input.
 */
export async function provisionSealedKey(kms: KMSClient, input: ProvisionSealedKeyInput): Promise<SealedKeyConfig> {
  if (!KEY_NAME_PATTERN.test(input.name)) throw new TypeError('name must be 1..64 characters of [A-Za-z0-9._:-]');
  if (!(SEALED_KEY_SPECS as readonly string[]).includes(input.keySpec))
    throw new TypeError(`keySpec must be one of ${SEALED_KEY_SPECS.join(', ')}`);
  if (typeof input.wrappingKeyId !== 'string' || input.wrappingKeyId.length === 0)
    throw new TypeError('wrappingKeyId is required');
  let out;
  try {
    out = await kms.send(
      new GenerateDataKeyPairWithoutPlaintextCommand({
        KeyId: input.wrappingKeyId,
        KeyPairSpec: input.keySpec as DataKeyPairSpec,
        EncryptionContext: sealedEncryptionContext(input.name),
      }),
    );
  } catch (err) {
    throw mapKmsError(err, 'GenerateDataKeyPairWithoutPlaintext');
  }
  if (!out.PrivateKeyCiphertextBlob || !out.PublicKey) {
    throw new KeyServiceError('internal', 'KMS GenerateDataKeyPairWithoutPlaintext returned no key pair');
  }
  const publicKey = Buffer.from(out.PublicKey);
  const key = crypto.createPublicKey({ key: publicKey, format: 'der', type: 'spki' });
  if (keySpecOfKeyObject(key) !== input.keySpec) {
    throw new KeyServiceError('internal', `KMS returned a key pair that is not ${input.keySpec}`);
  }
  return {
    name: input.name,
    custody: 'sealed',
    wrappingKeyId: input.wrappingKeyId,
    sealedKey: Buffer.from(out.PrivateKeyCiphertextBlob).toString('base64'),
    publicKey: publicKey.toString('base64'),
  };
}
