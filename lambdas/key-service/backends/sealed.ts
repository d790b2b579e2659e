/**
 * `sealed` custody (DESIGN §3): an RSA key pair from KMS GenerateDataKeyPairWithoutPlaintext whose
 * private half is unsealed (kms:Decrypt) only inside the function's memory. Not built yet: the key
 * name is served, every operation answers `unsupported`.
 */
import { KeyServiceError } from '../errors';
import type { KeyDescription } from '../protocol';
import { UNKNOWN_KEY_SPEC, type Backend, type PublicKeyOutput, type SignOutput } from './backend';

export class SealedBackend implements Backend {
  readonly custody = 'sealed' as const;

  constructor(
    readonly name: string,
    /** The key's custody-specific settings from KEYLESS_KEYS, for the future implementation. */
    readonly settings: Readonly<Record<string, unknown>>,
  ) {}

  async sign(): Promise<SignOutput> {
    throw new KeyServiceError('unsupported', 'custody "sealed" is not supported by this key service version');
  }

  async publicKey(): Promise<PublicKeyOutput> {
    throw new KeyServiceError('unsupported', 'custody "sealed" is not supported by this key service version');
  }

  describe(): KeyDescription {
    return { name: this.name, custody: this.custody, keySpec: UNKNOWN_KEY_SPEC };
  }
}
