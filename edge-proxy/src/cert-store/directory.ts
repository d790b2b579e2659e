/**
 * Certificate store in a local directory (`.keyless/dev/certs/` for the dev stack): one file
 * `<id>.json` per entry holding the same JSON as an SSM parameter value. Writes go to a temporary
 * file in the same directory and are renamed over the target, so an edge reading concurrently sees
 * either the old or the new entry, never half of one (rename(2) is atomic within a file system).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../config';
import type { CertificateStoreBackend } from './backend';
import {
  ENTRY_ID_PATTERN,
  parseCertificateEntry,
  serializeCertificateEntry,
  sortById,
  validateEntryId,
  type CertificateEntryInput,
  type StoredCertificate,
} from '../../../contract/certificate-store-entry';

/** Entries are small (a chain of a few certificates); anything bigger is not ours. */
const MAX_ENTRY_BYTES = 64 * 1024;

export class DirectoryCertificateStore implements CertificateStoreBackend {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  get location(): string {
    return `dir:${this.dir}`;
  }

  /** A missing directory is an empty store (the caller decides whether that is fatal). */
  async list(): Promise<StoredCertificate[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return [];
      throw new Error(`cannot read certificates from directory ${this.dir}: ${code ?? (e as Error).message}`, {
        cause: e,
      });
    }
    const out: StoredCertificate[] = [];
    for (const name of names) {
      // Hidden files include our own temporary files mid-write.
      if (name.startsWith('.') || !name.endsWith('.json')) continue;
      const file = path.join(this.dir, name);
      const id = name.slice(0, -'.json'.length);
      let text: string;
      try {
        const stat = await fs.promises.stat(file);
        if (!stat.isFile()) continue;
        if (stat.size > MAX_ENTRY_BYTES)
          throw new ConfigError(
            file,
            `is ${stat.size} bytes`,
            `A certificate entry is at most ${MAX_ENTRY_BYTES} bytes; remove the file or keep only the chain (leaf first, no root).`,
          );
        text = await fs.promises.readFile(file, 'utf8');
      } catch (e) {
        if (e instanceof ConfigError) throw e;
        // Removed between readdir and read (a concurrent `rotate retire`): simply not there any more.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new Error(
          `cannot read certificate entry ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          { cause: e },
        );
      }
      if (!ENTRY_ID_PATTERN.test(id)) {
        throw new ConfigError(
          file,
          'is not named <entry id>.json',
          'Name certificate entry files after their key name (letters, digits, ".", "_", "-"), or move other files out of the certificate directory.',
        );
      }
      out.push(parseCertificateEntry(file, id, text));
    }
    return sortById(out);
  }

  async put(entry: CertificateEntryInput): Promise<void> {
    const id = validateEntryId(entry.id ?? entry.keyName, 'certificate entry id');
    const target = path.join(this.dir, `${id}.json`);
    const value = serializeCertificateEntry({ ...entry, id }, target);
    await fs.promises.mkdir(this.dir, { recursive: true });
    const tmp = path.join(this.dir, `.${id}.json.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      // Public data: readable by everyone (the edge may run as another user).
      const fh = await fs.promises.open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(`${value}\n`, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, target);
    } catch (e) {
      await fs.promises.rm(tmp, { force: true });
      throw new Error(
        `cannot write certificate entry ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        { cause: e },
      );
    }
  }

  async remove(id: string): Promise<void> {
    validateEntryId(id, 'certificate entry id');
    await fs.promises.rm(path.join(this.dir, `${id}.json`), { force: true });
  }
}
