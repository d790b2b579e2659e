/**
 * Parameter state of the local SSM Parameter Store: every version of every parameter, expiry by
 * policy, and optional persistence (`state.<region>.json` in the data directory, written atomically
 * with mode 0600 — SecureString values are kept in plain text here, which is why the directory is
 * private and the endpoint loopback-only). Without a data directory state is in memory only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expiryOf, type ParameterPolicy } from './policies';

export type ParameterType = 'String' | 'StringList' | 'SecureString';
export type ParameterTier = 'Standard' | 'Advanced';

export interface ParameterVersion {
  version: number;
  value: string;
  type: ParameterType;
  description?: string;
  tier: ParameterTier;
  /** KMS key of a SecureString (as given, default `alias/aws/ssm`). */
  keyId?: string;
  allowedPattern?: string;
  dataType: string;
  policies: ParameterPolicy[];
  /** epoch milliseconds */
  lastModifiedDate: number;
  /** Access key id of the writer (when known), shown as LastModifiedUser. */
  lastModifiedUser?: string;
}

export interface ParameterRecord {
  name: string;
  tags: Record<string, string>;
  /** Oldest first; the last one is current. */
  versions: ParameterVersion[];
}

interface StateFile {
  format: 'keyless-local-ssm';
  version: 1;
  region: string;
  accountId: string;
  parameters: ParameterRecord[];
}

/** SSM keeps the 100 most recent versions of a parameter. */
export const MAX_VERSIONS = 100;

export class SsmStore {
  private readonly params = new Map<string, ParameterRecord>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  readonly file?: string;

  constructor(
    readonly region: string,
    readonly accountId: string,
    dataDir?: string,
  ) {
    if (dataDir) {
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      this.file = path.join(dataDir, `state.${region}.json`);
      this.load();
    }
  }

  arn(name: string): string {
    return `arn:aws:ssm:${this.region}:${this.accountId}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
  }

  get(name: string): ParameterRecord | undefined {
    this.purgeExpired();
    return this.params.get(name);
  }

  /** All parameters, ordered by name. */
  list(): ParameterRecord[] {
    this.purgeExpired();
    return [...this.params.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  put(record: ParameterRecord): void {
    if (record.versions.length > MAX_VERSIONS) record.versions.splice(0, record.versions.length - MAX_VERSIONS);
    this.params.set(record.name, record);
    this.schedule(record);
    this.save();
  }

  delete(name: string): boolean {
    const had = this.params.delete(name);
    this.unschedule(name);
    if (had) this.save();
    return had;
  }

  /** Deletes every parameter whose Expiration policy has passed (also run by a timer per parameter). */
  purgeExpired(now = Date.now()): void {
    let changed = false;
    for (const rec of this.params.values()) {
      const at = expiryOf(current(rec).policies);
      if (at !== undefined && at <= now) {
        this.params.delete(rec.name);
        this.unschedule(rec.name);
        changed = true;
      }
    }
    if (changed) this.save();
  }

  /** Stops the expiry timers (the endpoint is closing). */
  close(): void {
    for (const name of [...this.timers.keys()]) this.unschedule(name);
  }

  private schedule(rec: ParameterRecord): void {
    this.unschedule(rec.name);
    const at = expiryOf(current(rec).policies);
    if (at === undefined) return;
    // setTimeout holds at most ~24.8 days; a later expiry is re-armed on the way.
    const delay = Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      this.timers.delete(rec.name);
      if (Date.now() >= at) this.purgeExpired();
      else if (this.params.get(rec.name) === rec) this.schedule(rec);
    }, delay);
    timer.unref();
    this.timers.set(rec.name, timer);
  }

  private unschedule(name: string): void {
    const t = this.timers.get(name);
    if (t) clearTimeout(t);
    this.timers.delete(name);
  }

  private load(): void {
    if (!this.file || !fs.existsSync(this.file)) return;
    const state = JSON.parse(fs.readFileSync(this.file, 'utf8')) as StateFile;
    if (state.format !== 'keyless-local-ssm' || state.version !== 1)
      throw new Error(`${this.file}: not a local SSM state file`);
    for (const rec of state.parameters) {
      this.params.set(rec.name, rec);
      this.schedule(rec);
    }
    this.purgeExpired();
  }

  private save(): void {
    if (!this.file) return;
    const state: StateFile = {
      format: 'keyless-local-ssm',
      version: 1,
      region: this.region,
      accountId: this.accountId,
      parameters: [...this.params.values()],
    };
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(state));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }
}

export function current(rec: ParameterRecord): ParameterVersion {
  return rec.versions[rec.versions.length - 1];
}
