/**
 * `file` custody (local development and tests only, docs/architecture.md, "Custody modes"): an unencrypted PEM private key read
 * once, signing in-process with node:crypto. Never used in AWS: only the local Lambda endpoint
 * registers it (local-key-service.ts), so the production bundle does not contain it.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../contract/key-service-errors';
import { keySpecOfKeyObject, type KeyDescription, type SignatureSchemeName } from '../../contract/key-service-protocol';
import type { RsaMasterSecretParams } from '../../contract/key-service-codec';
import type {
  Backend,
  HostedCustody,
  HostedKeyConfig,
  MasterSecretOutput,
  PublicKeyOutput,
  SignOutput,
} from '../../lambdas/key-service/backends';
import { rejectUnknownFields } from '../../lambdas/key-service/config';
import { LocalRsaDecryptor, signWithKeyObject } from '../../lambdas/key-service/backends/local-key';

const MIN_RSA_BITS = 2048;
const MAX_PEM_BYTES = 64 * 1024;

/** A KEYLESS_KEYS entry of `file` custody. */
export interface FileKeyConfig extends HostedKeyConfig {
  name: string;
  custody: 'file';
  /** Absolute path of an unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1). Development only. */
  path: string;
}

/** The `file` custody mode, as the local Lambda endpoint registers it with the handler. */
export const FILE_CUSTODY: HostedCustody = {
  custody: 'file',
  parseEntry(obj: Record<string, unknown>, where: string): FileKeyConfig {
    rejectUnknownFields(obj, ['name', 'custody', 'path'], where);
    const p = obj.path;
    if (typeof p !== 'string' || p.length === 0) throw new ConfigError(`${where}.path: expected a non-empty string`);
    if (!path.isAbsolute(p)) throw new ConfigError(`${where}.path: must be an absolute path`);
    return { name: obj.name as string, custody: 'file', path: p };
  },
  createBackend(config: HostedKeyConfig): Backend {
    if (typeof config.path !== 'string') throw new ConfigError(`file key "${config.name}": path: expected a string`);
    return new FileBackend({ name: config.name, path: config.path });
  },
};

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
