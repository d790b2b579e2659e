/**
 * `file` custody (local development and tests only, docs/architecture.md, "Custody modes"): an unencrypted PEM private key read
 * once, signing in-process with node:crypto. Never used in AWS.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { ConfigError } from '../../../contract/key-service-errors';
import { keySpecOfKeyObject, type KeyDescription, type SignatureSchemeName } from '../../../contract/key-service-protocol';
import type { RsaMasterSecretParams } from '../rsa-premaster';
import type { Backend, MasterSecretOutput, PublicKeyOutput, SignOutput } from './backend';
import { LocalRsaDecryptor, signWithKeyObject } from './local-key';

const MIN_RSA_BITS = 2048;
const MAX_PEM_BYTES = 64 * 1024;

export interface FileBackendOptions {
  name: string;
  /** Absolute path of the PEM private key. */
  path: string;
}

export class FileBackend implements Backend {
  readonly custody = 'file' as const;
  readonly name: string;
  private readonly privateKey: crypto.KeyObject;
  private readonly spki: Buffer;
  private readonly keySpec: string;
  private readonly decryptor: LocalRsaDecryptor;

  /** Reads and parses the key file synchronously, once. Throws ConfigError (never with key bytes). */
  constructor(options: FileBackendOptions) {
    this.name = options.name;
    const where = `file key "${options.name}"`;
    let pem: Buffer;
    try {
      const stat = fs.statSync(options.path);
      if (!stat.isFile()) throw new ConfigError(`${where}: path is not a regular file`);
      if (stat.size > MAX_PEM_BYTES) throw new ConfigError(`${where}: key file larger than ${MAX_PEM_BYTES} bytes`);
      pem = fs.readFileSync(options.path);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`${where}: cannot read key file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      this.privateKey = crypto.createPrivateKey({ key: pem, format: 'pem' });
    } catch {
      throw new ConfigError(`${where}: not an unencrypted PEM private key`);
    } finally {
      pem.fill(0);
    }
    const keySpec = keySpecOfKeyObject(this.privateKey);
    if (keySpec === undefined) {
      throw new ConfigError(`${where}: unsupported key type (need RSA, or EC on P-256/P-384/P-521)`);
    }
    const bits = this.privateKey.asymmetricKeyDetails?.modulusLength;
    if (keySpec.startsWith('RSA_') && (bits === undefined || bits < MIN_RSA_BITS)) {
      throw new ConfigError(`${where}: RSA keys must be at least ${MIN_RSA_BITS} bits`);
    }
    this.keySpec = keySpec;
    this.spki = crypto.createPublicKey(this.privateKey).export({ type: 'spki', format: 'der' });
    this.decryptor = new LocalRsaDecryptor(this.privateKey);
  }

  async publicKey(): Promise<PublicKeyOutput> {
    return { spki: Buffer.from(this.spki), keySpec: this.keySpec };
  }

  describe(): KeyDescription {
    return { name: this.name, custody: this.custody, keySpec: this.keySpec };
  }

  sign(message: Buffer, scheme: SignatureSchemeName): Promise<SignOutput> {
    return signWithKeyObject(this.privateKey, message, scheme, 'file backend');
  }

  async rsaMasterSecret(params: RsaMasterSecretParams): Promise<MasterSecretOutput> {
    return this.decryptor.masterSecret(params);
  }
}
