/**
 * Key and alias state of the local KMS, its persistence, and key-identifier resolution.
 *
 * With a data directory the state (including private keys — this directory *is* the local HSM) is
 * kept in `state.<region>.json`, written atomically (temp file + fsync + rename) with mode 0600 in a
 * 0700 directory, so a dev stack reuses its keys across runs. Without one, state is in memory only.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { KmsError, notFound } from './errors';
import type { KeySpec, KeyUsage } from './specs';

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

export interface KeyRecord {
  keyId: string;
  keySpec: KeySpec;
  keyUsage: KeyUsage;
  description: string;
  /** epoch milliseconds */
  creationDate: number;
  keyState: KeyState;
  /** epoch milliseconds; set while PendingDeletion */
  deletionDate?: number;
  pendingWindowInDays?: number;
  multiRegion: boolean;
  /** Multi-Region keys: the region of the primary key (absent: this region's key is the primary). */
  primaryRegion?: string;
  /** Multi-Region primary keys: the regions holding a replica (ReplicateKey). */
  replicaRegions?: string[];
  tags: Record<string, string>;
  /** Key policy given to CreateKey (stored and returned, not evaluated); absent: the default policy. */
  policy?: string;
  /** PKCS#8 PEM of asymmetric keys. Secret: never logged, never returned by any operation. */
  privateKeyPem?: string;
  /** base64 SubjectPublicKeyInfo DER of asymmetric keys */
  publicKeyDer?: string;
  /** base64 key material of SYMMETRIC_DEFAULT and HMAC keys. Secret. */
  secret?: string;
}

export interface AliasRecord {
  aliasName: string;
  targetKeyId: string;
  creationDate: number;
  lastUpdatedDate: number;
}

interface StateFile {
  format: 'keyless-local-kms';
  version: 1;
  accountId: string;
  region: string;
  keys: KeyRecord[];
  aliases: AliasRecord[];
}

export interface StoreOptions {
  region: string;
  accountId: string;
  /** Directory for persistent state; omit for in-memory only. */
  dataDir?: string;
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MRK_RE = /^mrk-[0-9a-fA-F]{32}$/;
const ARN_RE = /^arn:(aws[a-z-]*):kms:([^:]*):([^:]*):(key|alias)\/(.+)$/;

export class KmsStore {
  readonly region: string;
  readonly accountId: string;
  readonly file?: string;
  private readonly keys = new Map<string, KeyRecord>();
  private readonly aliases = new Map<string, AliasRecord>();
  /** Parsed private keys, so each operation does not re-parse PEM. */
  private readonly keyObjects = new Map<string, crypto.KeyObject>();
  /**
   * The same account's store in another region (multi-Region keys: ReplicateKey, and the primary's
   * list of replicas). Set by the server, which keeps one store per region.
   */
  peer: (region: string) => KmsStore = (region) => {
    if (region === this.region) return this;
    throw new Error(`no store for region ${region}`);
  };

  constructor(opts: StoreOptions) {
    this.region = opts.region;
    this.accountId = opts.accountId;
    if (opts.dataDir) {
      fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
      this.file = path.join(opts.dataDir, `state.${opts.region}.json`);
      this.load();
    }
  }

  // --- persistence ----------------------------------------------------------------------------

  private load(): void {
    if (!this.file || !fs.existsSync(this.file)) return;
    const state = JSON.parse(fs.readFileSync(this.file, 'utf8')) as StateFile;
    if (state.format !== 'keyless-local-kms' || state.version !== 1) {
      throw new Error(`${this.file}: not a keyless local KMS state file (version 1)`);
    }
    if (state.accountId !== this.accountId || state.region !== this.region) {
      throw new Error(
        `${this.file}: belongs to ${state.accountId}/${state.region}, not ${this.accountId}/${this.region}`,
      );
    }
    for (const k of state.keys) this.keys.set(k.keyId, k);
    for (const a of state.aliases) this.aliases.set(a.aliasName, a);
    // Tighten permissions of a file that was created or copied loosely.
    fs.chmodSync(this.file, 0o600);
  }

  /** Write the whole state atomically with mode 0600. No-op in memory mode. */
  save(): void {
    if (!this.file) return;
    const state: StateFile = {
      format: 'keyless-local-kms',
      version: 1,
      accountId: this.accountId,
      region: this.region,
      keys: [...this.keys.values()],
      aliases: [...this.aliases.values()],
    };
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, `${JSON.stringify(state, null, 1)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.renameSync(tmp, this.file);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  }

  // --- identifiers ----------------------------------------------------------------------------

  keyArn(keyId: string, region = this.region): string {
    return `arn:aws:kms:${region}:${this.accountId}:key/${keyId}`;
  }

  aliasArn(aliasName: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:${aliasName}`;
  }

  newKeyId(multiRegion: boolean): string {
    return multiRegion ? `mrk-${crypto.randomBytes(16).toString('hex')}` : crypto.randomUUID();
  }

  /**
   * Resolve a key identifier: key id, key ARN, and — when `aliases` is true, as for the
   * cryptographic operations and DescribeKey — alias name or alias ARN. Management operations
   * (Enable/Disable/ScheduleKeyDeletion/...) take only a key id or key ARN, as in KMS.
   */
  resolveKey(id: string, { aliases }: { aliases: boolean }): KeyRecord {
    this.purgeExpired();
    let keyId: string;
    const arn = ARN_RE.exec(id);
    if (id.startsWith('arn:')) {
      if (!arn) throw new KmsError('InvalidArnException', `${id} is not a valid KMS ARN`);
      const [, , region, account, kind, rest] = arn;
      if (kind === 'alias') {
        if (!aliases) throw new KmsError('InvalidArnException', 'Key Aliases are not supported for this operation.');
        if (region !== this.region || account !== this.accountId) throw notFound(`Alias ${id} is not found.`);
        keyId = this.aliasTarget(`alias/${rest}`);
      } else {
        if (region !== this.region) throw notFound(`Invalid arn ${region}`);
        if (account !== this.accountId) throw notFound(`Key '${id}' does not exist`);
        keyId = rest;
      }
    } else if (id.startsWith('alias/')) {
      if (!aliases) throw notFound(`Invalid keyId '${id}'`);
      keyId = this.aliasTarget(id);
    } else {
      keyId = id;
    }
    if (!UUID_RE.test(keyId) && !MRK_RE.test(keyId)) throw notFound(`Invalid keyId '${keyId}'`);
    const rec = this.keys.get(keyId);
    if (!rec) throw notFound(`Key '${this.keyArn(keyId)}' does not exist`);
    return rec;
  }

  private aliasTarget(aliasName: string): string {
    const alias = this.aliases.get(aliasName);
    if (!alias) throw notFound(`Alias ${this.aliasArn(aliasName)} is not found.`);
    return alias.targetKeyId;
  }

  // --- keys -----------------------------------------------------------------------------------

  addKey(rec: KeyRecord): void {
    this.keys.set(rec.keyId, rec);
    this.save();
  }

  listKeys(): KeyRecord[] {
    this.purgeExpired();
    return [...this.keys.values()];
  }

  /** Apply a change to a key record and persist it. */
  updateKey(rec: KeyRecord, change: (rec: KeyRecord) => void): void {
    change(rec);
    this.save();
  }

  /** The private key of an asymmetric KMS key (cached KeyObject). */
  privateKey(rec: KeyRecord): crypto.KeyObject {
    let key = this.keyObjects.get(rec.keyId);
    if (!key) {
      if (!rec.privateKeyPem) throw new Error(`key ${rec.keyId} has no private key`);
      key = crypto.createPrivateKey(rec.privateKeyPem);
      this.keyObjects.set(rec.keyId, key);
    }
    return key;
  }

  secret(rec: KeyRecord): Buffer {
    if (!rec.secret) throw new Error(`key ${rec.keyId} has no secret material`);
    return Buffer.from(rec.secret, 'base64');
  }

  /** Delete keys whose deletion date has passed, with their aliases (as KMS does). */
  purgeExpired(now = Date.now()): void {
    let changed = false;
    for (const rec of this.keys.values()) {
      if (rec.keyState === 'PendingDeletion' && rec.deletionDate !== undefined && rec.deletionDate <= now) {
        this.keys.delete(rec.keyId);
        this.keyObjects.delete(rec.keyId);
        for (const a of this.aliases.values()) if (a.targetKeyId === rec.keyId) this.aliases.delete(a.aliasName);
        changed = true;
      }
    }
    if (changed) this.save();
  }

  // --- aliases --------------------------------------------------------------------------------

  getAlias(aliasName: string): AliasRecord | undefined {
    return this.aliases.get(aliasName);
  }

  putAlias(alias: AliasRecord): void {
    this.aliases.set(alias.aliasName, alias);
    this.save();
  }

  deleteAlias(aliasName: string): void {
    this.aliases.delete(aliasName);
    this.save();
  }

  listAliases(): AliasRecord[] {
    this.purgeExpired();
    return [...this.aliases.values()].sort((a, b) =>
      a.aliasName < b.aliasName ? -1 : a.aliasName > b.aliasName ? 1 : 0,
    );
  }
}
