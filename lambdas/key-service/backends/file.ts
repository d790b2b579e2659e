/**
 * `file` custody (local development and tests only, DESIGN §3): an unencrypted PEM private key read
 * once, signing in-process with node:crypto. Never used in AWS.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { ConfigError, KeyServiceError } from '../errors';
import { SCHEME_HASH, keySpecOfKeyObject, type KeyDescription, type SignatureSchemeName } from '../protocol';
import type { Backend, PublicKeyOutput, SignOutput } from './backend';

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
  }

  async publicKey(): Promise<PublicKeyOutput> {
    return { spki: Buffer.from(this.spki), keySpec: this.keySpec };
  }

  describe(): KeyDescription {
    return { name: this.name, custody: this.custody, keySpec: this.keySpec };
  }

  sign(message: Buffer, scheme: SignatureSchemeName): Promise<SignOutput> {
    const { hash, length } = SCHEME_HASH[scheme];
    let key: crypto.SignKeyObjectInput;
    if (scheme.startsWith('rsa_pss_rsae_')) {
      // TLS 1.3 / RFC 8446 §4.2.3: PSS salt length equals the digest length.
      key = { key: this.privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: length };
    } else if (scheme.startsWith('rsa_pkcs1_')) {
      key = { key: this.privateKey, padding: crypto.constants.RSA_PKCS1_PADDING };
    } else {
      key = { key: this.privateKey, dsaEncoding: 'der' };
    }
    const started = process.hrtime.bigint();
    return new Promise<SignOutput>((resolve, reject) => {
      // The callback form runs in libuv's thread pool and keeps the event loop free.
      crypto.sign(hash, message, key, (err, signature) => {
        if (err) {
          reject(new KeyServiceError('internal', 'file backend signing failed', err.name));
          return;
        }
        resolve({ signature, backendMs: Number(process.hrtime.bigint() - started) / 1e6 });
      });
    });
  }
}
